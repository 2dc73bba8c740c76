"""ingress-api: the tenant HTTP API; validates, stores and publishes, never calls a provider."""
