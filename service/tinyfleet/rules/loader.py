"""Load and validate a rule set from a directory of YAML files, with file:line:column for every error.

Every `*.yml` / `*.yaml` file in the directory (not recursive; sorted by name) is either a list of rules or a map
with `models:` (label names per model) and/or `rules:`. The set is accepted as a whole or refused as a whole:
`load_rules` raises `RuleSetError` carrying every `RuleIssue` found.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from pydantic import TypeAdapter, ValidationError

from tinyfleet.rules.model import Condition, Match, ModelInfo, Rule, RuleFileDoc

__all__ = ["RuleIssue", "RuleSet", "RuleSetError", "json_schema", "load_rules", "load_rules_text"]


@dataclass(frozen=True, slots=True)
class RuleIssue:
    file: str
    line: int  # 1-based
    column: int  # 1-based
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.message}"


class RuleSetError(ValueError):
    def __init__(self, issues: Sequence[RuleIssue]) -> None:
        self.issues = list(issues)
        super().__init__("invalid rule set:\n" + "\n".join(str(i) for i in self.issues))


@dataclass(frozen=True)
class RuleSet:
    rules: tuple[Rule, ...]
    models: Mapping[str, ModelInfo] = field(default_factory=dict)
    sources: Mapping[str, tuple[str, int, int]] = field(default_factory=dict)  # rule id → file, line, column

    def labels(self, model: str | int) -> dict[str, int] | None:
        info = self.models.get(str(model))
        return info.index() if info is not None else None

    def rule(self, rule_id: str) -> Rule:
        for r in self.rules:
            if r.id == rule_id:
                return r
        raise KeyError(rule_id)


# ---------------------------------------------------------------------------------------------------------------
# YAML with marks

_Path = tuple[str | int, ...]


def _compose(text: str, file: str) -> yaml.Node | None:
    return yaml.compose(text, Loader=yaml.SafeLoader)


def _mark(node: yaml.Node) -> tuple[int, int]:
    return node.start_mark.line + 1, node.start_mark.column + 1


def _locate(node: yaml.Node, loc: Iterable[str | int], *, key_of_last: bool = False) -> tuple[int, int]:
    """The line/column of a pydantic error location inside a node tree (loc parts that are not keys — union
    member names, validator names — are skipped). With `key_of_last`, point at the key of the last part."""
    parts = list(loc)
    cur = node
    for i, p in enumerate(parts):
        last = i == len(parts) - 1
        if isinstance(cur, yaml.MappingNode):
            for k, v in cur.value:
                if isinstance(k, yaml.ScalarNode) and k.value == str(p):
                    if last and key_of_last:
                        return _mark(k)
                    cur = v
                    break
        elif isinstance(cur, yaml.SequenceNode) and isinstance(p, int) and 0 <= p < len(cur.value):
            cur = cur.value[p]
    return _mark(cur)


def _duplicate_keys(node: yaml.Node, file: str) -> Iterator[RuleIssue]:
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for k, v in node.value:
            if isinstance(k, yaml.ScalarNode):
                if k.value in seen:
                    line, col = _mark(k)
                    yield RuleIssue(file, line, col, f"duplicate key {k.value!r}")
                seen.add(k.value)
            yield from _duplicate_keys(v, file)
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            yield from _duplicate_keys(v, file)


def _message(err: Mapping[str, Any]) -> str:
    loc = ".".join(str(p) for p in err["loc"] if _is_user_loc(p))
    msg = str(err["msg"])
    if err["type"] == "extra_forbidden":
        return f"unknown field {err['loc'][-1]!r}" + (f" (in {loc.rsplit('.', 1)[0]})" if "." in loc else "")
    msg = msg.removeprefix("Value error, ")
    return f"{loc}: {msg}" if loc else msg


def _is_user_loc(p: object) -> bool:
    if isinstance(p, int):
        return True
    s = str(p)
    return not (
        s[:1].isupper()
        or "[" in s
        or s.startswith(("constrained-", "function-", "lax-", "strict-"))
        or s in {"str", "int", "float", "bool", "list", "dict", "none"}
    )


_SHAPE_ERRORS = {
    "dict_type",
    "list_type",
    "model_type",
    "model_attributes_type",
    "tuple_type",
    "string_type",
    "literal_error",
    "int_type",
}
_FILE_ADAPTER: TypeAdapter[list[Rule] | RuleFileDoc] = TypeAdapter(list[Rule] | RuleFileDoc)


def json_schema() -> dict[str, Any]:
    """The JSON Schema of one rule file (for editors; written to rules/schema.json)."""
    schema = _FILE_ADAPTER.json_schema(by_alias=True)
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "tinyfleet rule file"
    return schema


def json_schema_text() -> str:
    return json.dumps(json_schema(), indent=2, sort_keys=True) + "\n"


# ---------------------------------------------------------------------------------------------------------------
# loading


@dataclass
class _Parsed:
    file: str
    root: yaml.Node
    models: dict[str, ModelInfo]
    rules: list[tuple[Rule, _Path]]
    models_path: _Path | None


def _parse_file(text: str, file: str, issues: list[RuleIssue]) -> _Parsed | None:
    try:
        root = _compose(text, file)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        issues.append(RuleIssue(file, line, col, f"invalid YAML: {e.problem or e.context}"))
        return None
    except yaml.YAMLError as e:
        issues.append(RuleIssue(file, 1, 1, f"invalid YAML: {e}"))
        return None
    if root is None:
        return _Parsed(file, yaml.ScalarNode("tag:yaml.org,2002:null", ""), {}, [], None)
    dups = list(_duplicate_keys(root, file))
    if dups:
        issues.extend(dups)
        return None
    try:
        data = yaml.load(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError as e:  # e.g. a bad tag the composer accepted
        line, col = _mark(root)
        issues.append(RuleIssue(file, line, col, f"invalid YAML: {e}"))
        return None
    if not isinstance(data, list | dict):
        line, col = _mark(root)
        issues.append(RuleIssue(file, line, col, "a rule file is a list of rules or a map with models:/rules:"))
        return None
    try:
        doc = _FILE_ADAPTER.validate_python(data)
    except ValidationError as e:
        is_list = isinstance(data, list)
        errors = e.errors()
        user_locs = [tuple(p for p in err["loc"][1:] if _is_user_loc(p)) for err in errors]
        for n, err in enumerate(errors):
            # a union reports a type error for each member that does not fit: keep the errors of the one that does
            if err["type"] in _SHAPE_ERRORS and any(
                len(ul) > len(user_locs[n]) and ul[: len(user_locs[n])] == user_locs[n]
                for m, ul in enumerate(user_locs)
            ):
                continue
            loc = list(err["loc"])
            # the union member: list[...] errors for a list document, RuleFileDoc errors for a map
            if loc and str(loc[0]).startswith("list[") != is_list:
                continue
            if loc:
                loc = loc[1:]
            line, col = _locate(root, loc, key_of_last=err["type"] == "extra_forbidden")
            msg = _message({**err, "loc": tuple(loc)})
            if isinstance(err["input"], bool) and err["type"] == "string_type":
                msg += " (YAML reads unquoted yes/no/on/off/true/false as booleans: quote it)"
            issues.append(RuleIssue(file, line, col, msg))
        return None
    if isinstance(doc, list):
        return _Parsed(file, root, {}, [(r, (i,)) for i, r in enumerate(doc)], None)
    return _Parsed(file, root, dict(doc.models), [(r, ("rules", i)) for i, r in enumerate(doc.rules)], ("models",))


def _walk_matches(c: Condition, path: _Path) -> Iterator[tuple[Match, _Path]]:
    if c.match is not None:
        yield c.match, (*path, "match")
    if c.absence is not None and isinstance(c.absence.of, Match):
        yield c.absence.of, (*path, "absence", "of")
    for key, subs in (("all", c.all_), ("any", c.any_)):
        for i, s in enumerate(subs or ()):
            yield from _walk_matches(s, (*path, key, i))
    if c.not_ is not None:
        yield from _walk_matches(c.not_, (*path, "not"))


def _pers(c: Condition, path: _Path) -> Iterator[tuple[str, _Path]]:
    if c.window is not None and c.window.per is not None:
        yield c.window.per, (*path, "window", "per")
    if c.absence is not None and c.absence.per is not None:
        yield c.absence.per, (*path, "absence", "per")
    for key, subs in (("all", c.all_), ("any", c.any_)):
        for i, s in enumerate(subs or ()):
            yield from _pers(s, (*path, key, i))
    if c.not_ is not None:
        yield from _pers(c.not_, (*path, "not"))


def _check_set(parsed: list[_Parsed], issues: list[RuleIssue], *, check_labels: bool = True) -> RuleSet:
    models: dict[str, ModelInfo] = {}
    model_src: dict[str, str] = {}
    for p in parsed:
        for name, info in p.models.items():
            if name in models and models[name] != info:
                line, col = _locate(p.root, ("models", name), key_of_last=True)
                issues.append(RuleIssue(p.file, line, col, f"model {name!r} is also defined, differently, in "
                                        f"{model_src[name]}"))  # fmt: skip
            models.setdefault(name, info)
            model_src.setdefault(name, p.file)
    seen: dict[str, tuple[str, int, int]] = {}
    rules: list[Rule] = []
    for p in parsed:
        for rule, path in p.rules:
            line, col = _locate(p.root, (*path, "id"))
            if rule.id in seen:
                f, ln, cl = seen[rule.id]
                issues.append(RuleIssue(p.file, line, col, f"duplicate rule id {rule.id!r} (first at {f}:{ln}:{cl})"))
                continue
            seen[rule.id] = (p.file, line, col)
            rules.append(rule)
            for m, mpath in _walk_matches(rule, path) if check_labels else ():
                _check_match(m, mpath, p, models, issues)
            per = rule.per
            for inner, ipath in _pers(rule, path):
                if per is not None and inner != per:
                    ln, cl = _locate(p.root, ipath)
                    issues.append(RuleIssue(p.file, ln, cl, f"per {inner!r} contradicts per {per!r} of the rule"))
                per = per or inner
    return RuleSet(tuple(rules), models, seen)


def _check_match(m: Match, path: _Path, p: _Parsed, models: Mapping[str, ModelInfo], issues: list[RuleIssue]) -> None:
    if m.model is None:
        return
    info = models.get(str(m.model))
    names = info.index() if info is not None else None
    if m.label is None:
        return
    refs: list[tuple[str | int, _Path]] = []
    lab = m.label
    for op in ("eq", "ne"):
        v = getattr(lab, op)
        if v is not None:
            refs.append((v, (*path, "label", op)))
    for op, alias in (("in_", "in"), ("not_in", "not_in")):
        for i, v in enumerate(getattr(lab, op) or ()):
            refs.append((v, (*path, "label", alias, i)))
    for ref, rpath in refs:
        if not isinstance(ref, str):
            continue
        if names is None:
            ln, cl = _locate(p.root, (*path, "model"))
            issues.append(RuleIssue(p.file, ln, cl, f"unknown model {m.model!r}: label names need a models: entry"))
            return
        if ref not in names:
            # the shorthand `label: name` has no `eq` key: _locate stops at the label scalar itself
            ln, cl = _locate(p.root, rpath)
            issues.append(RuleIssue(p.file, ln, cl, f"unknown label {ref!r} of model {m.model!r} "
                                    f"(known: {', '.join(sorted(names, key=names.__getitem__))})"))  # fmt: skip


def load_rules_text(files: Mapping[str, str]) -> RuleSet:
    """Validate a rule set given as {file name: YAML text}. Raises `RuleSetError`."""
    issues: list[RuleIssue] = []
    parsed = [p for name, text in sorted(files.items()) if (p := _parse_file(text, name, issues)) is not None]
    # a file that failed may hold models: then "unknown model" errors elsewhere would only be noise
    ruleset = _check_set(parsed, issues, check_labels=not issues)
    if issues:
        raise RuleSetError(issues)
    return ruleset


def load_rules(directory: str | Path = "rules") -> RuleSet:
    """Load every *.yml / *.yaml file of `directory` (not recursive). Raises `RuleSetError`."""
    d = Path(directory)
    if not d.is_dir():
        raise RuleSetError([RuleIssue(str(d), 1, 1, "not a directory")])
    files: dict[str, str] = {}
    issues: list[RuleIssue] = []
    for f in sorted([*d.glob("*.yml"), *d.glob("*.yaml")]):
        try:
            files[str(f)] = f.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as e:
            issues.append(RuleIssue(str(f), 1, 1, f"cannot read: {e}"))
    if issues:
        raise RuleSetError(issues)
    return load_rules_text(files)
