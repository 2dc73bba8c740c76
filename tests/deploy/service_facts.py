"""What the deploy files must agree with: the services, their ports and their settings."""

# Service name (Kubernetes Service, Prometheus job) -> (python module, HTTP port).
SERVICES = {
    "ingress-api": ("ingress_api", 8080),
    "lane-scheduler": ("lane_scheduler", 8081),
    "provider-sender": ("provider_sender", 8082),
    "webhook-dispatcher": ("webhook_dispatcher", 8083),
    "template-sync": ("template_sync", 8084),
}
PORT_BY_MODULE = dict(SERVICES.values())

SETTINGS = frozenset(
    {
        "LANEGATE_AMQP_URL",
        "LANEGATE_MONGO_URI",
        "LANEGATE_MONGO_DB",
        "LANEGATE_NAMESPACE",
        "LANEGATE_ADMIN_KEY",
        "LANEGATE_SECRET_KEY",
        "LANEGATE_LOG_LEVEL",
        "LANEGATE_HTTP_HOST",
        "LANEGATE_INGRESS_PORT",
        "LANEGATE_SCHEDULER_PORT",
        "LANEGATE_SENDER_PORT",
        "LANEGATE_DISPATCHER_PORT",
        "LANEGATE_TEMPLATE_SYNC_PORT",
        "LANEGATE_PREFETCH",
        "LANEGATE_WEBHOOK_TIMEOUT_SECONDS",
        "LANEGATE_ALLOW_PRIVATE_TARGETS",
        "LANEGATE_SHUTDOWN_GRACE_SECONDS",
        "LANEGATE_PUBLIC_URL",
    }
)
SECRET_SETTINGS = frozenset(
    {"LANEGATE_AMQP_URL", "LANEGATE_MONGO_URI", "LANEGATE_ADMIN_KEY", "LANEGATE_SECRET_KEY"}
)

# Queue each autoscaled service consumes (with the default LANEGATE_NAMESPACE).
AUTOSCALED_QUEUES = {
    "provider-sender": "lanegate.provider-sender",
    "webhook-dispatcher": "lanegate.webhook-dispatcher",
}
