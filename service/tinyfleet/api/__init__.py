"""HTTP API (FastAPI): thin routers over `tinyfleet.store` queries.

Nothing below this package imports FastAPI.
"""

from tinyfleet.api.app import create_app

__all__ = ["create_app"]
