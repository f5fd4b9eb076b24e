"""Fleet management: device provisioning and lifecycle, broker credentials and ACL, cohorts, API keys, audit."""
