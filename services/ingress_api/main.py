"""ingress-api wiring: settings in, declared endpoints on, resources opened by the service shell."""

import time
from collections.abc import AsyncIterator

from aiohttp import web

# Importing the route modules declares their endpoints; this order is the order of the
# router and of the paths in /openapi.json.
# isort: off
from ingress_api.routes import (  # noqa: F401
    waiting_messages,
    instances,
    admin,
    messages,
    attachments,
    message_listing,
    contacts,
    webhook_deliveries,
    monitoring,
)
from ingress_api import openapi
from ingress_api.routes import (  # noqa: F401
    pacing,
    pausing,
    sandbox,
    sessions,
    templates,
    provider_callbacks,
    console,
    chats,
    lead_labels,
    groups,
    otp,
    plans,
    account,
    signing_in,
    compat_whatssync,
    compat_syncro,
    compat_sendsync,
    instance_health,
    usage,
    admin_overview,
)
from ingress_api import rpc

# isort: on
from ingress_api.accept.lookups import LOOKUPS, Lookups
from ingress_api.accept.quotas import MESSAGE_COUNTER, MONTH_COUNTER, MessageCounter, MonthCounter
from ingress_api.accept.rate_limit import LIMITER, RateLimiter, quota_headers
from ingress_api.accept.settling import settling_failed_sends
from ingress_api.accounts.login import SIGN_IN_THROTTLE, SignInThrottle
from ingress_api.accounts.tokens import TokenKeys
from ingress_api.auth import KEYS, TOKEN_KEYS, KeyCache
from ingress_api.normalizing import normalizing_at_start
from ingress_api.otp.outcomes import expiring_codes
from ingress_api.registry import API
from ingress_api.routes.monitoring import STARTED, health_counts
from ingress_api.sealing import sealing
from lanegate.service import KEYRING, SETTINGS, STORE, base_app, run
from lanegate.settings import Settings
from lanegate.store.sweeper import sweeping


def build(settings: Settings) -> web.Application:
    """The ingress-api application."""
    app = base_app(settings, "ingress-api")
    # Outside the error boundary, so 4xx answers carry the quota too.
    app.middlewares.insert(1, quota_headers)
    app[STARTED] = time.monotonic()
    app[KEYS] = KeyCache(settings.auth_cache_seconds)
    app[LIMITER] = RateLimiter()
    app[MESSAGE_COUNTER] = MessageCounter()
    app[MONTH_COUNTER] = MonthCounter()
    app[TOKEN_KEYS] = TokenKeys(app[KEYRING])
    app[SIGN_IN_THROTTLE] = SignInThrottle()
    app[LOOKUPS] = Lookups(settings.accept_cache_seconds)
    app.router.add_routes(API.routes())
    app.router.add_routes(console.routes())
    openapi.install(app)
    app.cleanup_ctx.append(rpc.rpc_client)
    app.cleanup_ctx.append(settling_failed_sends)
    app.cleanup_ctx.append(return_held_counts)
    app.cleanup_ctx.append(health_counts)
    app.cleanup_ctx.append(normalizing_at_start)
    app.cleanup_ctx.append(sealing)
    app.cleanup_ctx.append(expired_sweeping)
    app.cleanup_ctx.append(expiring_codes)
    return app


# Every collection with a TTL index: where the store has none, ingress-api's sweeper deletes
# their expired documents (rate-limit windows, daily message counts, finished one-time codes,
# ended sessions, old health and usage days, remembered inbound message ids, receipts kept
# for a send never recorded).
SWEPT = (
    "rate_limits",
    "tenant_usage",
    "otp_codes",
    "otp_number_sends",
    "user_sessions",
    "refresh_tokens",
    "instance_health",
    "usage_days",
    "inbound_seen",
    "early_receipts",
)


async def expired_sweeping(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: sweep the expired documents of SWEPT where the store has no TTL indexes."""
    async with sweeping(app[STORE], SWEPT, app[SETTINGS].store_sweep_interval_seconds):
        yield


async def return_held_counts(app: web.Application) -> AsyncIterator[None]:
    """cleanup_ctx: when the process stops, what it reserved and did not use goes back to the
    store (before the store closes), for the other replicas."""
    yield
    for counter in (app[LIMITER], app[MESSAGE_COUNTER], app[MONTH_COUNTER], app[SIGN_IN_THROTTLE]):
        await counter.close(app[STORE])


def main() -> None:
    run("ingress-api", build, lambda s: s.ingress_port)
