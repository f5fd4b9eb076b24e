"""The project's TinyML pipeline: vibration data → features → train → int8 / prune → evaluate in TFLM → card → push.

``make models`` (``python -m models build``); see models/README.md."""
