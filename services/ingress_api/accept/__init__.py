"""Accepting messages: inserts, idempotency, quotas, rate limits and the reads a send needs."""
