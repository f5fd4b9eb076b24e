"""Device selectors: a small declarative tag query, parsed (never evaluated) into clauses.

    site=plant-a AND line in (1,2) AND machine != press-3 AND has shift AND not has retired

Every clause tests one tag: ``=``, ``!=``, ``in (…)``, ``not in (…)``, ``has``, ``not has``; clauses are joined
with ``AND`` (case-insensitive keywords). Values are bare words (letters, digits, ``. _ : / @ + -``) or double-
quoted strings. Tag values are compared as text, so ``line in (1,2)`` matches the tag ``"1"`` and the number 1.
The parsed :class:`Selector` is what a cohort stores; it compiles to a SQL condition over ``devices.tags`` and
also matches a tag dict in Python (both give the same answer, which the tests check).
"""

from __future__ import annotations

import re
from typing import Any, Literal, Self

import sqlalchemy as sa
from pydantic import BaseModel, Field, model_validator

from tinyfleet.fleet.errors import InvalidSelector

TAG_KEY_PATTERN = r"[A-Za-z_][A-Za-z0-9_.-]{0,63}"
MAX_CLAUSES = 32
MAX_VALUES = 256
MAX_QUERY_LENGTH = 4096

Op = Literal["eq", "ne", "in", "not_in", "has", "not_has"]

_TOKEN = re.compile(
    r"""\s*(?:
        (?P<str>"(?:[^"\\]|\\.)*")
      | (?P<op>!=|=|\(|\)|,)
      | (?P<word>[A-Za-z0-9_.:/@+-]+)
    )""",
    re.VERBOSE,
)
_KEY = re.compile(TAG_KEY_PATTERN)


class Clause(BaseModel):
    key: str = Field(pattern=f"^{TAG_KEY_PATTERN}$", description="Tag name")
    op: Op
    values: list[str] = Field(default_factory=list, max_length=MAX_VALUES)

    @model_validator(mode="after")
    def _values_fit_the_operator(self) -> Self:
        wanted = {"eq": (1, 1), "ne": (1, 1), "has": (0, 0), "not_has": (0, 0)}.get(self.op, (1, MAX_VALUES))
        if not wanted[0] <= len(self.values) <= wanted[1]:
            raise ValueError(f"operator {self.op} takes {wanted[0]}..{wanted[1]} values, got {len(self.values)}")
        return self


class Selector(BaseModel):
    """All clauses must hold (an empty selector matches every device)."""

    all: list[Clause] = Field(default_factory=list, max_length=MAX_CLAUSES)

    def text(self) -> str:
        """The canonical text form (parses back to the same selector)."""
        parts = []
        for c in self.all:
            if c.op == "has":
                parts.append(f"has {c.key}")
            elif c.op == "not_has":
                parts.append(f"not has {c.key}")
            elif c.op in ("eq", "ne"):
                parts.append(f"{c.key}{'=' if c.op == 'eq' else '!='}{_quote(c.values[0])}")
            else:
                word = "in" if c.op == "in" else "not in"
                parts.append(f"{c.key} {word} ({','.join(_quote(v) for v in c.values)})")
        return " AND ".join(parts)

    def matches(self, tags: dict[str, Any]) -> bool:
        for c in self.all:
            present = c.key in tags and tags[c.key] is not None
            value = _as_text(tags.get(c.key)) if present else None
            if c.op == "has":
                ok = present
            elif c.op == "not_has":
                ok = not present
            elif c.op == "eq":
                ok = present and value == c.values[0]
            elif c.op == "ne":
                ok = not present or value != c.values[0]
            elif c.op == "in":
                ok = present and value in c.values
            else:
                ok = not present or value not in c.values
            if not ok:
                return False
        return True

    def condition(self, tags: sa.ColumnElement[Any]) -> sa.ColumnElement[bool]:
        """A SQL condition over a JSONB tags column; values are bound parameters, keys too."""
        conds: list[sa.ColumnElement[bool]] = []
        for c in self.all:
            value = tags.op("->>", return_type=sa.Text)(sa.literal(c.key, sa.Text))
            has = sa.and_(tags.op("?", return_type=sa.Boolean)(sa.literal(c.key, sa.Text)), value.is_not(None))
            if c.op == "has":
                conds.append(has)
            elif c.op == "not_has":
                conds.append(sa.not_(has))
            elif c.op == "eq":
                conds.append(value == c.values[0])
            elif c.op == "ne":
                conds.append(sa.or_(value.is_(None), value != c.values[0]))
            elif c.op == "in":
                conds.append(value.in_(c.values))
            else:
                conds.append(sa.or_(value.is_(None), value.not_in(c.values)))
        return sa.and_(sa.true(), *conds)


def _as_text(value: Any) -> str:
    # JSONB ->> renders booleans as true/false and numbers in their JSON form: do the same here.
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return value
    if isinstance(value, float) and value.is_integer():
        return repr(value)
    return str(value)


def _quote(value: str) -> str:
    if re.fullmatch(r"[A-Za-z0-9_.:/@+-]+", value):
        return value
    return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'


def _tokens(query: str) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    pos = 0
    query = query.strip()
    while pos < len(query):
        m = _TOKEN.match(query, pos)
        if m is None or m.end() == pos:
            raise InvalidSelector(f"unexpected character {query[pos:].lstrip()[:1]!r} at position {pos}")
        kind = m.lastgroup
        assert kind is not None
        text = m.group(kind)
        if kind == "str":
            text = re.sub(r"\\(.)", r"\1", text[1:-1])
        out.append((kind, text))
        pos = m.end()
        while pos < len(query) and query[pos].isspace():
            pos += 1
    return out


def _is_word_tok(tok: tuple[str, str] | None) -> bool:
    return tok is not None and tok[0] == "word"


def parse_selector(query: str) -> Selector:
    """Parse the text form; raises :class:`InvalidSelector` with what was expected where."""
    if len(query) > MAX_QUERY_LENGTH:
        raise InvalidSelector(f"selector longer than {MAX_QUERY_LENGTH} characters")
    toks = _tokens(query)
    i = 0

    def peek(offset: int = 0) -> tuple[str, str] | None:
        return toks[i + offset] if i + offset < len(toks) else None

    def is_word(tok: tuple[str, str] | None, word: str) -> bool:
        return tok is not None and tok[0] == "word" and tok[1].lower() == word

    def take_value() -> str:
        nonlocal i
        tok = peek()
        if tok is None or tok[0] not in ("word", "str"):
            raise InvalidSelector(f"expected a value after clause {len(clauses) + 1}'s operator")
        i += 1
        return tok[1]

    def take_key() -> str:
        nonlocal i
        tok = peek()
        if tok is None or tok[0] != "word" or not _KEY.fullmatch(tok[1]):
            got = "the end" if tok is None else repr(tok[1])
            raise InvalidSelector(f"expected a tag name ({TAG_KEY_PATTERN}), got {got}")
        i += 1
        return tok[1]

    def take_list() -> list[str]:
        nonlocal i
        if peek() != ("op", "("):
            raise InvalidSelector("expected '(' after in")
        i += 1
        values = [take_value()]
        while peek() == ("op", ","):
            i += 1
            values.append(take_value())
        if peek() != ("op", ")"):
            raise InvalidSelector("expected ',' or ')' in a value list")
        i += 1
        return values

    def clause_ends(offset: int) -> bool:
        return peek(offset) is None or is_word(peek(offset), "and")

    clauses: list[Clause] = []
    if not toks:
        return Selector()
    while True:
        # `has K` / `not has K` are clauses only when K ends the clause: a tag may itself be called "has".
        if is_word(peek(), "has") and _is_word_tok(peek(1)) and clause_ends(2):
            i += 1
            clauses.append(Clause(key=take_key(), op="has"))
        elif is_word(peek(), "not") and is_word(peek(1), "has") and _is_word_tok(peek(2)) and clause_ends(3):
            i += 2
            clauses.append(Clause(key=take_key(), op="not_has"))
        else:
            key = take_key()
            tok = peek()
            if tok == ("op", "="):
                i += 1
                clauses.append(Clause(key=key, op="eq", values=[take_value()]))
            elif tok == ("op", "!="):
                i += 1
                clauses.append(Clause(key=key, op="ne", values=[take_value()]))
            elif is_word(tok, "in"):
                i += 1
                clauses.append(Clause(key=key, op="in", values=take_list()))
            elif is_word(tok, "not") and is_word(peek(1), "in"):
                i += 2
                clauses.append(Clause(key=key, op="not_in", values=take_list()))
            else:
                got = "the end" if tok is None else repr(tok[1])
                raise InvalidSelector(f"expected =, !=, in or not in after {key!r}, got {got}")
        if len(clauses) > MAX_CLAUSES:
            raise InvalidSelector(f"more than {MAX_CLAUSES} clauses")
        if peek() is None:
            break
        if not is_word(peek(), "and"):
            raise InvalidSelector(f"expected AND between clauses, got {peek()[1]!r}")  # type: ignore[index]
        i += 1
    if any(len(c.values) > MAX_VALUES for c in clauses):
        raise InvalidSelector(f"more than {MAX_VALUES} values in a list")
    return Selector(all=clauses)
