"""Tenants' own account: plans and limits, self-service keys (callable outside the routes)."""
