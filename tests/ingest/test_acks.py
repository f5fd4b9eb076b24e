"""The batched PUBACKs are understood by real brokers: what was acknowledged is not redelivered.

The ingest writes all PUBACKs of a batch in one socket write. If a broker misread them it would keep the
messages in the session and send them again at the next connection; the database would hide that as
duplicates, so this test counts what comes back after a restart of the worker under the same client id
(it fails when the acknowledgements are left out). The demo's embedded amqtt broker does not redeliver
unacknowledged messages at all, so only Mosquitto can show this; amqtt's acceptance of the batched PUBACKs
is covered by the demo test, whose stream would stop if amqtt dropped the connection over them.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator

import pytest

from tests.ingest.conftest import Publisher, make_settings, scalar, wait_until
from tests.support.instances import MosquittoInstance
from tinyfleet.ingest.service import IngestService
from tinyfleet.wire import Event, encode_event

N = 500


@pytest.fixture(params=[5, 4], ids=["mqtt5", "mqtt311"])
def broker(request: pytest.FixtureRequest) -> Iterator[tuple[str, str, int, int]]:
    with MosquittoInstance() as mq:
        yield mq.url, mq.host, mq.port, int(request.param)


def test_acknowledged_messages_are_not_redelivered(migrated_db, broker):
    url, host, port, protocol = broker
    prefix = f"a{secrets.token_hex(3)}/v1"
    settings = make_settings(migrated_db, prefix, mqtt_url=url, mqtt_protocol=protocol, mqtt_client_id="acks")
    first = IngestService(settings)
    first.start()
    assert first.wait_connected(10)
    time.sleep(0.3)
    pub = Publisher(host, port, protocol=protocol)
    now = int(time.time() * 1000)
    for i in range(N):
        ev = Event(ts=now + i, seq=i, boot=1, model="m", kind=0, label=i % 3, score=0.5)
        pub.publish(f"{prefix}/dev-{i % 7}/evt", encode_event(ev))
    pub.close()
    assert wait_until(lambda: scalar(migrated_db, "select count(*) from events") == N)
    first.stop()

    second = IngestService(settings)  # same client id: same persistent session
    second.start()
    try:
        assert second.wait_connected(10)
        time.sleep(2.0)
        received = sum(s.value for m in second.metrics.messages_received.collect() for s in m.samples
                       if s.name.endswith("_total"))  # fmt: skip
        assert received == 0, f"the broker redelivered {received} acknowledged messages"
    finally:
        second.stop()
    assert scalar(migrated_db, "select count(*) from events") == N
