"""The API's routers (thin: parameters in, store function, schema out)."""

#: Every resource router carries its full prefix itself (so route templates in metrics are the real paths).
API_PREFIX = "/api/v1"
