"""webhook-dispatcher: delivers events to tenant webhooks, signed, retried, recorded."""
