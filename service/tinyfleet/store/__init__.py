"""Storage: schema (`models`), migrations (`migrate`), engine and sessions (`db`), read queries (`queries`),
retention and rollups (`maintenance`), and the record of the TimescaleDB path taken (`meta`)."""
