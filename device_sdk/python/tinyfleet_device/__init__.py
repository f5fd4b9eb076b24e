"""Python reference device for tinyfleet."""
