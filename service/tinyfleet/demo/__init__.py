"""`tinyfleet demo`: the service with a broker, a database and a few simulated devices, all in one process."""
