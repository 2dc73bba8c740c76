"""Every setting of every service, read once from `LANEGATE_*` environment variables."""

from ipaddress import IPv4Network, IPv6Network
from typing import Literal

from pydantic import AliasChoices, AmqpDsn, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    """Gateway configuration; services build it in `main()` and pass it down."""

    model_config = SettingsConfigDict(env_prefix="LANEGATE_", frozen=True, extra="ignore")

    amqp_url: SecretStr = SecretStr("amqp://guest:guest@127.0.0.1:5672/")
    mongo_uri: SecretStr = SecretStr("mongodb://127.0.0.1:27017/")
    mongo_db: str = "lanegate"
    namespace: str = Field("lanegate", pattern=r"^[a-z0-9][a-z0-9_.-]{0,62}$")
    admin_key: SecretStr = SecretStr("")
    secret_key: SecretStr = SecretStr("")
    # development lets services run without LANEGATE_SECRET_KEY (secrets stored unencrypted).
    env: Literal["production", "development"] = "production"

    log_level: str = "INFO"
    http_host: str = "0.0.0.0"
    ingress_port: int = 8080
    scheduler_port: int = 8081
    sender_port: int = 8082
    dispatcher_port: int = 8083
    template_sync_port: int = 8084

    prefetch: int = Field(16, ge=1, le=1000)
    max_attempts: int = Field(8, ge=1, le=100)
    shutdown_grace_seconds: float = Field(10.0, ge=0)
    max_body_bytes: int = Field(1024 * 1024, ge=1024)
    rate_limit_per_minute: int = Field(600, ge=1)
    # Proxies (load balancer, ingress controller) whose X-Forwarded-For names the client.
    trusted_proxies: list[IPv4Network | IPv6Network] = Field(default_factory=list)
    auth_cache_seconds: float = Field(5.0, ge=0, le=300)
    accept_cache_seconds: float = Field(5.0, ge=0, le=60)
    attachment_max_bytes: int = Field(50 * 1024 * 1024, ge=1024)
    attachment_timeout_seconds: float = Field(30.0, gt=0)
    tenant_max_instances: int = Field(100, ge=0)
    tenant_max_messages_per_day: int = Field(100_000, ge=0)
    health_refresh_seconds: float = Field(15.0, gt=0, le=3600)

    dispatch_timeout_seconds: float = Field(60.0, gt=0)
    scheduler_replica_id: str = Field("", max_length=200)
    scheduler_lease_seconds: float = Field(6.0, ge=3, le=60)
    sandbox_delivered_after_seconds: float = Field(0.5, ge=0)
    sandbox_read_after_seconds: float = Field(1.0, ge=0)
    provider_timeout_seconds: float = Field(15.0, gt=0)
    provider_max_attempts: int = Field(5, ge=1, le=50)
    provider_backoff_seconds: float = Field(5.0, ge=0)
    # PEM certificates trusted for SMTP relays besides the system's (a relay with a private CA).
    smtp_ca_file: str | None = None
    rpc_timeout_seconds: float = Field(10.0, gt=0)
    number_check_wait_seconds: float = Field(3.0, gt=0, le=60)
    reach_out_lock_seconds: float = Field(86400.0, gt=0)
    public_url: str = "http://127.0.0.1:8080"
    template_sync_interval_seconds: float = Field(900.0, gt=0)
    template_sync_backoff_seconds: float = Field(60.0, gt=0)
    template_sync_max_pages: int = Field(100, ge=1)
    template_sync_max_templates: int = Field(5000, ge=1)
    template_sync_account_seconds: float = Field(120.0, gt=0)

    webhook_timeout_seconds: float = Field(10.0, gt=0)
    # One switch for every address a tenant gives (webhooks, attachment URLs, provider base
    # URLs); the old webhook-only name still works.
    allow_private_targets: bool = Field(
        False,
        validation_alias=AliasChoices(
            "LANEGATE_ALLOW_PRIVATE_TARGETS", "LANEGATE_WEBHOOK_ALLOW_PRIVATE_TARGETS"
        ),
    )
    webhook_retry_schedule_seconds: tuple[float, ...] = Field(
        (1, 5, 30, 300, 1800, 7200, 21600, 43200), min_length=1
    )
    webhook_retry_jitter: float = Field(0.1, ge=0, le=1)
    webhook_endpoint_concurrency: int = Field(4, ge=1, le=100)
    webhook_disable_after_seconds: float = Field(86400.0, gt=0)
    webhook_poll_interval_seconds: float = Field(1.0, gt=0)
    # Only where the store refuses TTL indexes (FerretDB v1): how often expired documents go.
    store_sweep_interval_seconds: float = Field(60.0, gt=0)
    otp_max_live_codes: int = Field(10_000, ge=1)
    metrics_refresh_seconds: float = Field(5.0, gt=0, le=300)

    def amqp_dsn(self) -> str:
        """Return the broker URL, validated as an AMQP DSN."""
        return str(AmqpDsn(self.amqp_url.get_secret_value()))
