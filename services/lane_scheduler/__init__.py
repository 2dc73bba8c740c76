"""lane-scheduler: decides when each message may go; never calls a provider or a webhook."""
