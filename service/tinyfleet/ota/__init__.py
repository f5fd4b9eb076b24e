"""Over-the-air updates: the manifest signer, its key, and the operator commands (docs/ota.md).

The manifest format and the verifier devices run live in the device package, ``tinyfleet_device.manifest``;
this package builds on that one definition.
"""
