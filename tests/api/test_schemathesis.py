"""Property-based tests over the app's own OpenAPI document: no request the schema allows gets a 5xx,
and every answer matches the documented schemas and status codes — with an admin API key, and without any key
(then every route but health and metrics answers 401: schemathesis' client is not on localhost)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.pool import NullPool

from tests.api.conftest import T0, Seeder, api_settings
from tests.conftest import MQTT_HOST, MQTT_PORT
from tinyfleet.api import create_app
from tinyfleet.ingest.service import IngestService
from tinyfleet.store.db import Database
from tinyfleet.store.migrate import upgrade

#: The configured admin key (not one in the table, which a generated DELETE /api-keys/{id} could revoke).
ADMIN_KEY = "tfk_schemathesis_admin_" + "k" * 24
OPEN_PATHS = {"/", "/healthz", "/readyz", "/metrics", "/openapi.json", "/docs", "/redoc"}

# The schema is read from an app built at import time; the database it queries is put in place by the fixture
# below (schemathesis' lazy `from_fixture` loader does not work with pytest 9: it reads `node._nodeid`).
app = create_app(api_settings("postgresql://postgres@127.0.0.1:5432/unset"), ingest=None)
schema = schemathesis.openapi.from_asgi("/openapi.json", app)


@pytest.fixture(scope="module", autouse=True)
def seeded_database(make_database: Callable[[], str]) -> Iterator[None]:
    url = make_database()
    upgrade(url)
    seed = Seeder(url)
    try:
        for i in range(3):
            seed.device(f"press-0{i}", online=i != 1)
        seed.events(
            [("press-00", 1, n, T0 - timedelta(minutes=n), "vib-cls", 0, n % 4, 0.5 + n / 100, None) for n in range(20)]
        )
        seed.dead_letter(
            topic="tf/v1/press-00/evt", device_id="press-00", payload=b"\xff", code="malformed_cbor", detail="x"
        )
    finally:
        seed.close()
    cfg = api_settings(
        url, mqtt_url=f"mqtt://{MQTT_HOST}:{MQTT_PORT}", mqtt_session_expiry_s=60, admin_api_key=ADMIN_KEY
    )
    # A real ingest worker, so that /readyz answers 200 (it is 503 by design without a broker connection).
    ingest = IngestService(cfg)
    ingest.start()
    if not ingest.wait_connected(10):
        pytest.fail("ingest did not connect to Mosquitto", pytrace=False)
    app.state.ingest = ingest
    # No pool: the app runs in schemathesis' own event-loop thread, and nothing is left open to dispose.
    app.state.settings = cfg
    app.state.database = Database(cfg, poolclass=NullPool)
    yield
    app.state.ingest = None
    ingest.stop()


class AdminKey:
    """Schemathesis auth provider: the admin key on every case (negative cases that drop it stay without)."""

    def get(self, case: schemathesis.Case, context: Any) -> str:  # type: ignore[type-arg]
        return ADMIN_KEY

    def set(self, case: schemathesis.Case, data: str, context: Any) -> None:  # type: ignore[type-arg]
        case.headers = case.headers or {}
        case.headers["Authorization"] = f"Bearer {data}"


@schema.auth.apply(AdminKey)
@schema.parametrize()
@settings(max_examples=150, deadline=None, suppress_health_check=list(HealthCheck))
def test_api_conforms_and_never_5xx(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
    # Every check but positive-data acceptance: a random cursor, or a range of more than 10,000 buckets, is
    # schema-valid yet rightly refused (422), which the schema cannot express.
    case.call_and_validate(excluded_checks=[positive_data_acceptance])


@schema.parametrize()
@settings(max_examples=40, deadline=None, suppress_health_check=list(HealthCheck))
def test_without_a_key_everything_but_health_is_401_and_never_5xx(case: schemathesis.Case) -> None:  # type: ignore[type-arg]
    response = case.call_and_validate(excluded_checks=[positive_data_acceptance])
    assert response.status_code < 500
    if case.path not in OPEN_PATHS:
        # Validation may answer first (422) for a malformed path or body, the router for a path (404) or a
        # method (405) no route takes; otherwise nothing gets past the missing key, GET or not.
        assert response.status_code in (401, 404, 405, 422), (case.method, case.path, response.status_code)
        if response.status_code == 401:
            challenge = {k.lower(): v for k, v in response.headers.items()}["www-authenticate"]
            assert str(challenge).find("Bearer") >= 0
