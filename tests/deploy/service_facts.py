"""What the deploy files must agree with: the services, their ports and their settings."""

from lanegate.settings import Settings

# Service name (Kubernetes Service, Prometheus job) -> (python module, HTTP port).
SERVICES = {
    "ingress-api": ("ingress_api", 8080),
    "lane-scheduler": ("lane_scheduler", 8081),
    "provider-sender": ("provider_sender", 8082),
    "webhook-dispatcher": ("webhook_dispatcher", 8083),
    "template-sync": ("template_sync", 8084),
}
PORT_BY_MODULE = dict(SERVICES.values())

# Every setting the services read (deploy files may set any, and nothing else).
SETTINGS = frozenset(f"LANEGATE_{name.upper()}" for name in Settings.model_fields)
SECRET_SETTINGS = frozenset(
    {"LANEGATE_AMQP_URL", "LANEGATE_MONGO_URI", "LANEGATE_ADMIN_KEY", "LANEGATE_SECRET_KEY"}
)

# Queue each autoscaled service consumes (with the default LANEGATE_NAMESPACE).
AUTOSCALED_QUEUES = {
    "provider-sender": "lanegate.provider-sender",
    "webhook-dispatcher": "lanegate.webhook-dispatcher",
}
