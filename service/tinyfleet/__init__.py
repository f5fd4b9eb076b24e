"""tinyfleet: backend for fleets of TinyML devices."""
__version__ = "0.1.0"
