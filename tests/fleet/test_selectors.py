"""The tag selector: parsing, canonical text, and the same answer from Python and from PostgreSQL."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy.dialects.postgresql import JSONB

from tinyfleet.config import to_sqlalchemy_url
from tinyfleet.fleet.errors import InvalidSelector
from tinyfleet.fleet.selectors import Clause, Selector, parse_selector


def test_parse_the_documented_example() -> None:
    sel = parse_selector("site=plant-a AND line in (1,2)")
    assert sel == Selector(
        all=[Clause(key="site", op="eq", values=["plant-a"]), Clause(key="line", op="in", values=["1", "2"])]
    )
    assert sel.matches({"site": "plant-a", "line": 2})
    assert sel.matches({"site": "plant-a", "line": "1"})
    assert not sel.matches({"site": "plant-a", "line": 3})
    assert not sel.matches({"line": 1})


def test_keywords_quotes_and_tags_named_like_keywords() -> None:
    sel = parse_selector('has shift and not has retired AND name != "a b \\"c\\"" and has=1 AND x not in (a)')
    assert [c.op for c in sel.all] == ["has", "not_has", "ne", "eq", "not_in"]
    assert sel.all[2].values == ['a b "c"']
    assert sel.all[3].key == "has"
    assert parse_selector(sel.text()) == sel


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("site=", "expected a value"),
        ("site plant-a", "expected =, !=, in or not in"),
        ("site in 1", "expected '('"),
        ("site in (1 2)", "expected ',' or ')'"),
        ("site=a OR line=1", "expected AND"),
        ("site=a;", "unexpected character"),
        ("9site=a", "expected a tag name"),
    ],
)
def test_errors_say_what_was_expected(query: str, message: str) -> None:
    with pytest.raises(InvalidSelector, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_selector(query)


def test_limits() -> None:
    with pytest.raises(InvalidSelector, match="clauses"):
        parse_selector(" AND ".join(f"k{i}=v" for i in range(40)))
    with pytest.raises(InvalidSelector, match="longer"):
        parse_selector("k=" + "v" * 5000)


# ------------------------------------------------------------------------------ Python ≡ SQL (property)
KEYS = ["site", "line", "has", "x_1"]
VALUES = st.one_of(st.sampled_from(["a", "b", "plant-a", "1", "2", "a b", 'q"t']), st.integers(-3, 3), st.booleans())
TAGS = st.dictionaries(st.sampled_from(KEYS), st.one_of(VALUES, st.none()), max_size=4)
TEXT_VALUES = st.sampled_from(["a", "b", "plant-a", "1", "2", "true", "false", "a b", 'q"t', "-1"])
CLAUSES = st.one_of(
    st.builds(lambda k, v: Clause(key=k, op="eq", values=[v]), st.sampled_from(KEYS), TEXT_VALUES),
    st.builds(lambda k, v: Clause(key=k, op="ne", values=[v]), st.sampled_from(KEYS), TEXT_VALUES),
    st.builds(
        lambda k, vs: Clause(key=k, op="in", values=vs),
        st.sampled_from(KEYS),
        st.lists(TEXT_VALUES, min_size=1, max_size=3),
    ),
    st.builds(
        lambda k, vs: Clause(key=k, op="not_in", values=vs),
        st.sampled_from(KEYS),
        st.lists(TEXT_VALUES, min_size=1, max_size=3),
    ),
    st.builds(lambda k: Clause(key=k, op="has"), st.sampled_from(KEYS)),
    st.builds(lambda k: Clause(key=k, op="not_has"), st.sampled_from(KEYS)),
)
SELECTORS = st.builds(Selector, all=st.lists(CLAUSES, max_size=4))


@pytest.fixture(scope="module")
def engine(pg_admin_url: str) -> Iterator[sa.Engine]:
    eng = sa.create_engine(to_sqlalchemy_url(pg_admin_url))
    yield eng
    eng.dispose()


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(selector=SELECTORS, tags=TAGS)
def test_sql_and_python_agree_and_text_round_trips(engine: sa.Engine, selector: Selector, tags: dict[str, Any]) -> None:
    assert parse_selector(selector.text()) == selector
    column = sa.literal(tags, JSONB)
    with engine.connect() as conn:
        in_sql = conn.execute(sa.select(selector.condition(column))).scalar_one()
    assert bool(in_sql) == selector.matches(tags), (selector.text(), tags)
