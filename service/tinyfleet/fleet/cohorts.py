"""Cohorts: named, saved selectors over device tags (e.g. the canary group of a rollout)."""

from __future__ import annotations

import re

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncSession

from tinyfleet.fleet.errors import CohortConflict, CohortNotFound, InvalidSelector
from tinyfleet.fleet.selectors import Selector, parse_selector
from tinyfleet.store.models import Cohort, Device

COHORT_NAME_PATTERN = r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}"
_NAME = re.compile(COHORT_NAME_PATTERN)


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name):
        raise InvalidSelector(f"invalid cohort name {name!r}: must match {COHORT_NAME_PATTERN}")
    return name


def selector_of(cohort: Cohort) -> Selector:
    return Selector.model_validate(cohort.selector)


async def get_cohort(session: AsyncSession, name: str) -> Cohort:
    cohort = await session.get(Cohort, name)
    if cohort is None:
        raise CohortNotFound(f"cohort {name!r} not found")
    return cohort


async def list_cohorts(session: AsyncSession) -> list[Cohort]:
    return list((await session.scalars(sa.select(Cohort).order_by(Cohort.name))).all())


async def save_cohort(session: AsyncSession, name: str, query: str, description: str | None, *, create: bool) -> Cohort:
    """Create (`create`: refused if the name exists) or replace a cohort's selector."""
    check_name(name)
    selector = parse_selector(query)
    cohort = await session.get(Cohort, name, with_for_update=True)
    if create and cohort is not None:
        raise CohortConflict(f"cohort {name!r} exists")
    if cohort is None:
        cohort = Cohort(name=name)
        session.add(cohort)
    else:
        cohort.updated_at = sa.func.now()
    cohort.query = selector.text()
    cohort.selector = selector.model_dump()
    cohort.description = description
    await session.flush()
    await session.refresh(cohort)
    return cohort


async def delete_cohort(session: AsyncSession, name: str) -> None:
    cohort = await get_cohort(session, name)
    await session.delete(cohort)
    await session.flush()


def device_condition(selector: Selector, *, include_decommissioned: bool = False) -> sa.ColumnElement[bool]:
    """The SQL condition of "this device is in the cohort" (decommissioned devices left out by default)."""
    table = Device.__table__
    cond = selector.condition(table.c.tags)
    if not include_decommissioned:
        cond = sa.and_(cond, table.c.decommissioned_at.is_(None))
    return cond
