"""`lanegate`, the operator's command line: tenants, keys, instances, dead letters, secrets."""
