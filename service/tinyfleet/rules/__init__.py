"""Alert rules: the rule model (YAML files in git), the loader with file:line:column errors, and the pure engine.

No I/O beyond reading rule files; nothing here knows about MQTT, the database or actions.
"""

from tinyfleet.rules.engine import EventFact, RuleEngine, Transition, replay, to_ms
from tinyfleet.rules.loader import RuleIssue, RuleSet, RuleSetError, json_schema, load_rules, load_rules_text
from tinyfleet.rules.model import Rule

__all__ = [
    "EventFact",
    "Rule",
    "RuleEngine",
    "RuleIssue",
    "RuleSet",
    "RuleSetError",
    "Transition",
    "json_schema",
    "load_rules",
    "load_rules_text",
    "replay",
    "to_ms",
]
