"""Every metric a Grafana panel or an alert rule queries is exported by a running service
(or by Prometheus or RabbitMQ themselves)."""

import aiohttp
import pytest

from devtools.stack import SERVICES
from tests.deploy.dashboard_metrics import (
    PROMETHEUS_SYNTHETIC_METRICS,
    RABBITMQ_METRICS,
    dashboard_metric_names,
    exported_metric_names,
    rule_metric_names,
)
from tests.support.gateway import Gateway

pytestmark = pytest.mark.e2e


async def _exported(gateway: Gateway) -> set[str]:
    names: set[str] = set()
    async with aiohttp.ClientSession() as http:
        for service in SERVICES:
            async with http.get(gateway.stack.url(service) + "/metrics") as response:
                names |= exported_metric_names(await response.text())
    return names


async def test_every_dashboard_metric_is_exported_by_the_services(gateway: Gateway) -> None:
    # Prometheus's own series and RabbitMQ's (its plugin, scraped apart) come from elsewhere.
    external = PROMETHEUS_SYNTHETIC_METRICS | RABBITMQ_METRICS
    assert set() == dashboard_metric_names() - external - await _exported(gateway)


async def test_every_rule_metric_is_exported_by_the_services(gateway: Gateway) -> None:
    external = PROMETHEUS_SYNTHETIC_METRICS | RABBITMQ_METRICS
    assert set() == rule_metric_names() - external - await _exported(gateway)
