"""Grafana for tinyfleet: the dashboards in `dashboards/` (built by `definitions`), the SQL macro expander that
mirrors Grafana's PostgreSQL data source (`macros`), and `tinyfleet dashboards push` (`push`, `cli`)."""
