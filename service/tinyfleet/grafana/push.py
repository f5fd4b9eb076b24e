"""`tinyfleet dashboards push`: create or update the data source, the folder and the dashboards in a Grafana.

Idempotent: the data source is found by uid (then by name), the folder by uid, each dashboard by uid, and every
dashboard is saved with ``overwrite: true`` — a second push updates in place and never makes a copy. Talks to
Grafana's HTTP API through `grafana-client`:

=====================================  ============================================================
``GET /api/health``                     reachable at all (no token needed)
``GET /api/datasources/uid/{uid}``      then ``GET /api/datasources/name/{name}`` when 404
``POST /api/datasources``               create · ``PUT /api/datasources/uid/{uid}`` update
``GET /api/folders/{uid}``              ``POST /api/folders`` ``{"uid", "title"}`` when 404
``GET /api/dashboards/uid/{uid}``       to report created vs updated
``POST /api/dashboards/db``             ``{"dashboard", "folderUid", "overwrite": true, "message"}``
=====================================  ============================================================
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

import niquests
from grafana_client.api import GrafanaApi
from grafana_client.client import GrafanaClientError, GrafanaException, GrafanaUnauthorizedError

from tinyfleet.grafana.definitions import DATASOURCE_NAME, DATASOURCE_TYPE, DATASOURCE_UID

DEFAULT_FOLDER_UID = "tinyfleet"
DEFAULT_FOLDER_TITLE = "tinyfleet"


class DashboardsError(Exception):
    """Base of this package's errors: the message is meant for the person running the command."""


class GrafanaPushError(DashboardsError):
    """Grafana could not be reached, refused the token, or refused a request."""


class DashboardFilesError(DashboardsError):
    """The dashboard JSON files are missing or unreadable."""


# ------------------------------------------------------------------------------------------------ the files
def dashboards_dir() -> Path:
    """Where the dashboard JSON files are: inside the installed wheel, else in the source checkout."""
    here = Path(__file__).resolve().parent
    for candidate in (here / "files" / "json", here.parents[2] / "dashboards" / "json"):
        if candidate.is_dir():
            return candidate
    raise DashboardFilesError("no dashboards/json directory found (pass --dir)")


def load_dashboards(directory: Path | None = None) -> list[dict[str, Any]]:
    """Every ``*.json`` of `directory` (default `dashboards_dir()`), sorted by file name."""
    directory = directory or dashboards_dir()
    files = sorted(directory.glob("*.json"))
    if not files:
        raise DashboardFilesError(f"no dashboard JSON files in {directory}")
    out = []
    for path in files:
        try:
            doc = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DashboardFilesError(f"cannot read dashboard {path}: {exc}") from exc
        if not isinstance(doc, dict) or not doc.get("uid") or not doc.get("title"):
            raise DashboardFilesError(f"{path} is not a dashboard with a uid and a title")
        out.append(doc)
    return out


# -------------------------------------------------------------------------------------------- the data source
@dataclass(frozen=True)
class DatasourceSpec:
    """The PostgreSQL/TimescaleDB data source Grafana's panels query."""

    host: str  # host:port as Grafana reaches the database
    database: str
    user: str
    password: str | None
    sslmode: str = "disable"
    name: str = DATASOURCE_NAME
    uid: str = DATASOURCE_UID

    @classmethod
    def from_url(cls, url: str, *, host: str | None = None, sslmode: str | None = None) -> DatasourceSpec:
        """From a ``postgresql://user:password@host:port/db`` URL; `host` overrides what Grafana connects to."""
        parts = urlsplit(url)
        if not parts.scheme.startswith("postgres") or not parts.hostname:
            raise DashboardsError(f"the data source needs a postgresql://user@host/db URL, got {parts.scheme}://…")
        database = parts.path.lstrip("/")
        if not database or not parts.username:
            raise DashboardsError("the data source URL needs a user and a database name")
        return cls(
            host=host or f"{parts.hostname}:{parts.port or 5432}",
            database=database,
            user=unquote(parts.username),
            password=unquote(parts.password) if parts.password else None,
            sslmode=sslmode or "disable",
        )

    def body(self) -> dict[str, Any]:
        """The body of ``POST /api/datasources`` and ``PUT /api/datasources/uid/{uid}``."""
        body: dict[str, Any] = {
            "name": self.name,
            "uid": self.uid,
            "type": DATASOURCE_TYPE,
            "access": "proxy",
            "url": self.host,
            "user": self.user,
            "isDefault": False,
            "jsonData": {
                "database": self.database,
                "sslmode": self.sslmode,
                "postgresVersion": 1500,
                "timescaledb": True,
                "maxOpenConns": 10,
            },
        }
        if self.password is not None:
            body["secureJsonData"] = {"password": self.password}
        return body


@dataclass
class PushReport:
    datasource: str = "skipped"  # created | updated | skipped
    datasource_uid: str = DATASOURCE_UID
    folder: str = "exists"  # created | exists
    dashboards: list[tuple[str, str, str, str]] = field(default_factory=list)  # (uid, title, created|updated, url)

    def lines(self) -> Iterator[str]:
        yield f"data source {self.datasource_uid}: {self.datasource}"
        yield f"folder: {self.folder}"
        for uid, title, what, url in self.dashboards:
            yield f"dashboard {uid} ({title}): {what} {url}"


def _status(exc: GrafanaException) -> int:
    return int(getattr(exc, "status_code", 0) or 0)


def _is_missing(exc: GrafanaException) -> bool:
    return isinstance(exc, GrafanaClientError) and _status(exc) == 404


def _explain(exc: Exception, doing: str) -> GrafanaPushError:
    if isinstance(exc, GrafanaUnauthorizedError):
        return GrafanaPushError(f"Grafana refused the token (401) while {doing}: use a service-account token")
    if isinstance(exc, GrafanaException):
        status = _status(exc)
        message = str(exc)
        response = getattr(exc, "response", None)
        if isinstance(response, dict) and response.get("message"):
            message = str(response["message"])
        if status == 403:
            return GrafanaPushError(f"the token may not do this (403) while {doing}: {message} (needs Editor/Admin)")
        return GrafanaPushError(f"Grafana answered {status or 'an error'} while {doing}: {message}")
    return GrafanaPushError(f"cannot reach Grafana while {doing}: {exc}")


def _with_datasource_uid(doc: Any, uid: str) -> Any:
    """The dashboard with every reference to the tinyfleet data source pointing at `uid`."""
    if isinstance(doc, dict):
        if doc.get("type") == DATASOURCE_TYPE and doc.get("uid") == DATASOURCE_UID and set(doc) == {"type", "uid"}:
            return {"type": DATASOURCE_TYPE, "uid": uid}
        return {k: _with_datasource_uid(v, uid) for k, v in doc.items()}
    if isinstance(doc, list):
        return [_with_datasource_uid(v, uid) for v in doc]
    return doc


class GrafanaPusher:
    """Push to one Grafana: ``GrafanaPusher(url, token).push(dashboards, datasource)``."""

    def __init__(self, url: str, token: str, *, timeout: float = 15.0) -> None:
        if not urlsplit(url).scheme.startswith("http") or not urlsplit(url).hostname:
            raise GrafanaPushError(f"the Grafana URL must look like http(s)://host:3000, got {url!r}")
        if not token:
            raise GrafanaPushError("a Grafana token is needed (a service-account token with the Editor role)")
        self.url = url.rstrip("/")
        # grafana-client is untyped: everything it returns is Any here.
        self.api: Any = GrafanaApi.from_url(self.url, credential=token, timeout=timeout)

    def _call(self, doing: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
        try:
            return fn(*args, **kwargs)
        except (GrafanaException, niquests.exceptions.RequestException) as exc:
            raise _explain(exc, doing) from exc

    def _get_or_none(self, doing: str, fn: Any, *args: Any) -> Any:
        try:
            return fn(*args)
        except GrafanaException as exc:
            if _is_missing(exc):
                return None
            raise _explain(exc, doing) from exc
        except niquests.exceptions.RequestException as exc:
            raise _explain(exc, doing) from exc

    def check_reachable(self) -> dict[str, Any]:
        health = self._call("checking /api/health", self.api.client.GET, "/health")
        return health if isinstance(health, dict) else {}

    def ensure_datasource(self, spec: DatasourceSpec) -> tuple[str, str]:
        """(uid, created|updated) of the data source, found by uid first, then by name."""
        ds = self.api.datasource
        found = self._get_or_none("looking up the data source", ds.get_datasource_by_uid, spec.uid)
        if found is None:
            found = self._get_or_none("looking up the data source by name", ds.get_datasource_by_name, spec.name)
        body = spec.body()
        if found is None:
            self._call("creating the data source", ds.create_datasource, body)
            return spec.uid, "created"
        uid = str(found.get("uid") or spec.uid)
        body["uid"] = uid
        if "id" in found:
            body["id"] = found["id"]
        self._call("updating the data source", ds.update_datasource_by_uid, uid, body)
        return uid, "updated"

    def ensure_folder(self, uid: str, title: str) -> str:
        if self._get_or_none("looking up the folder", self.api.folder.get_folder, uid) is not None:
            return "exists"
        self._call("creating the folder", self.api.folder.create_folder, title, uid=uid)
        return "created"

    def push(
        self,
        dashboards: list[dict[str, Any]],
        datasource: DatasourceSpec | None,
        *,
        folder_uid: str = DEFAULT_FOLDER_UID,
        folder_title: str = DEFAULT_FOLDER_TITLE,
        message: str = "tinyfleet dashboards push",
    ) -> PushReport:
        report = PushReport()
        self.check_reachable()
        if datasource is not None:
            report.datasource_uid, report.datasource = self.ensure_datasource(datasource)
        report.folder = self.ensure_folder(folder_uid, folder_title)
        for doc in dashboards:
            uid = str(doc["uid"])
            existing = self._get_or_none(f"looking up dashboard {uid}", self.api.dashboard.get_dashboard, uid)
            body = copy.deepcopy(_with_datasource_uid(doc, report.datasource_uid))
            body["id"] = None  # Grafana matches on uid; a numeric id of another instance would be refused
            saved = self._call(
                f"saving dashboard {uid}",
                self.api.dashboard.update_dashboard,
                {"dashboard": body, "folderUid": folder_uid, "overwrite": True, "message": message},
            )
            url = str(saved.get("url", "")) if isinstance(saved, dict) else ""
            report.dashboards.append((uid, str(doc["title"]), "updated" if existing else "created", url))
        return report
