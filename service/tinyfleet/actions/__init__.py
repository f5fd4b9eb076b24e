"""Alert actions: the outbox worker and its senders (email, webhook, Node-RED, MQTT). See docs/actions.md."""

from tinyfleet.actions.senders import Delivery, DeliveryError, MqttPublisher, Senders, render
from tinyfleet.actions.signing import sign, signature_headers, verify
from tinyfleet.actions.worker import OutboxWorker, backoff_delay

__all__ = [
    "Delivery",
    "DeliveryError",
    "MqttPublisher",
    "OutboxWorker",
    "Senders",
    "backoff_delay",
    "render",
    "sign",
    "signature_headers",
    "verify",
]
