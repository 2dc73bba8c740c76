"""One-time codes: their limits, how they are sent, and their outcomes."""
