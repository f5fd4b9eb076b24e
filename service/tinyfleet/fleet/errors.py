"""The fleet module's own exceptions (the API maps them to 404/409/422)."""

from __future__ import annotations

from typing import Any


class FleetError(Exception):
    """Base of the fleet errors; `message` is meant for the user."""

    def __init__(self, message: str, *, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.details = details


class DeviceNotFound(FleetError):
    pass


class DeviceConflict(FleetError):
    """The device's state forbids the change (already provisioned, decommissioned, ...)."""


class InvalidDeviceInput(FleetError):
    """A device id, tag or CSV that does not pass validation; `details` lists row-level problems."""


class InvalidSelector(FleetError):
    """A cohort query that does not parse."""


class CohortNotFound(FleetError):
    pass


class CohortConflict(FleetError):
    pass


class ApiKeyNotFound(FleetError):
    pass


class BrokerSyncError(FleetError):
    """The broker's password/ACL files could not be written or the broker not reloaded."""


class UserNotFound(FleetError):
    pass


class UserConflict(FleetError):
    """A user of that name exists already."""


class InvalidUserInput(FleetError):
    """A username, password or role that does not pass validation."""
