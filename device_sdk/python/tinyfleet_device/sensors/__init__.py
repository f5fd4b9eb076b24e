"""Sensor simulators of the reference device."""
