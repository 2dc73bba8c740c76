"""The deploy alert rules and dashboards against the running gateway: five services (two
lane-scheduler replicas) scraped every second by a real Prometheus with the rules loaded.
Scenarios run in order on one stack, driven through the API; every assertion reads
Prometheus's query API. The last test checks that every dashboard panel had data in some
scenario, or is listed with the reason it cannot here."""

import asyncio
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from lane_scheduler.ownership import SHARDS
from tests.conftest import whole_stack
from tests.deploy.dashboard_metrics import DASHBOARDS_DIR
from tests.deploy.service_facts import SERVICES
from tests.support.gateway import Gateway, eventually
from tests.support.messages import send, wait_status
from tests.support.prometheus import Prometheus, running_prometheus
from tests.support.receiver import Receiver
from tests.support.rule_captures import captured_case, deploy_rules, promtool_failure
from tests.support.store_proxy import StoreProxy

pytestmark = pytest.mark.e2e

SECOND_SCHEDULER = "lane_scheduler_2"
CAPPED_LANES = {
    "urgent": {"delayMs": [50, 100]},
    "normal": {"delayMs": [100, 200], "perHour": 100},
    "bulk": {"delayMs": [150, 300], "perDay": 1000},
}
# Panels that stay empty here, with the reason (dashboard file, panel title).
NO_DATA_HERE = {
    ("dependencies.json", "Template syncs/s by result"): "template-sync syncs only cloud_api "
    "instances, which need Meta's simulator; tests/e2e/test_templates.py covers the syncs",
    ("dependencies.json", "Queue depth (RabbitMQ)"): "the test broker runs without the "
    "rabbitmq_prometheus plugin; compose scrapes it (deploy/prometheus/prometheus.yml)",
    ("dependencies.json", "Dead-letter queues (RabbitMQ)"): "the test broker runs without the "
    "rabbitmq_prometheus plugin; `lanegate dlq list` reads the same queues from the broker",
}


@pytest.fixture(scope="module")
def ops() -> Iterator[tuple[Gateway, Prometheus, float]]:
    """The stack with a second scheduler replica, Prometheus over it, and when it started."""
    started = time.time()
    with whole_stack(
        LANEGATE_METRICS_REFRESH_SECONDS="1",
        # A killed replica's shards stay without an owner for a minute: the ownership alerts
        # have that long to show it, however slow the machine.
        LANEGATE_SCHEDULER_LEASE_SECONDS="60",
        # A failing receiver's deliveries wait for their second retry for ten minutes.
        LANEGATE_WEBHOOK_RETRY_SCHEDULE_SECONDS="[1, 600]",
    ) as gateway:
        stack = gateway.stack
        stack.start_replica(SECOND_SCHEDULER, "lane_scheduler")
        targets = {
            job: [f"127.0.0.1:{stack.ports[module]}"] for job, (module, _) in SERVICES.items()
        }
        targets["lane-scheduler"].append(f"127.0.0.1:{stack.ports[SECOND_SCHEDULER]}")
        work_dir = Path("var/test-logs") / f"prometheus-{uuid.uuid4().hex[:8]}"
        with running_prometheus(targets, work_dir) as prometheus:
            yield gateway, prometheus, started


async def _value(prometheus: Prometheus, expr: str) -> float | None:
    result = await prometheus.query(expr)
    return float(result[0]["value"][1]) if result else None


async def _resolved(prometheus: Prometheus, alert: str) -> bool:
    return not await _fires(prometheus, alert)


async def _is(prometheus: Prometheus, expr: str, value: float) -> bool:
    return await _value(prometheus, expr) == value


async def _promtool_agrees(
    prometheus: Prometheus,
    scenario: str,
    since: float,
    fire: list[str],
    quiet: list[str] | tuple[()] = (),
) -> None:
    """The scenario's series as scraped, held, make the deploy rules with their real `for`
    fire `fire` (and not `quiet`) in promtool (tests/support/rule_captures.py)."""
    case = await captured_case(prometheus, scenario, since, fire, quiet)
    assert "" == promtool_failure(case)


async def _fires(prometheus: Prometheus, alert: str, **labels: str) -> bool:
    for fired in (await prometheus.firing()).get(alert, []):
        if all(fired.get(k) == v for k, v in labels.items()):
            return True
    return False


async def test_idle_gateway_fires_no_alert(
    ops: tuple[Gateway, Prometheus, float], receiver: Receiver
) -> None:
    gateway, prometheus, _ = ops

    async def settled() -> bool:
        up = await _value(prometheus, "sum(up)")
        shards = await _value(prometheus, "sum(lanegate_scheduler_owned_shards)")
        per_replica = await prometheus.query("lanegate_scheduler_owned_shards > 0")
        return up == 6 and shards == SHARDS and len(per_replica) == 2

    await eventually(settled, timeout=60)
    since = time.time()
    assert len(list(deploy_rules())) == await prometheus.rule_count()  # no rule file went missing
    # Traffic through a capped instance, and a new number that never connected with a
    # message waiting for it: neither is a reason to page anyone.
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url(), lanes=CAPPED_LANES)
    sent = [await send(gateway, key, name, lane=lane) for lane in ("urgent", "normal", "bulk")]
    await wait_status(gateway, "sent", *sent)
    fresh = await gateway.instance(tenant_id, key, receiver.url(), connect=False)
    await send(gateway, key, fresh)

    async def never_connected_seen() -> bool:
        count = await _value(prometheus, 'sum(lanegate_instances{state="never_connected"})')
        return count == 1

    await eventually(never_connected_seen, timeout=30)
    await asyncio.sleep(3)  # three evaluations with the state in: a wrong rule would fire
    # Only the guard saying the queue alerts are blind: RabbitMQ is not scraped here.
    assert {"LanegateQueueMetricsAbsent"} == set(await prometheus.firing())
    blind = "LanegateQueueMetricsAbsent"
    quiet = [alert for alert in list(deploy_rules()) if alert != blind]
    await _promtool_agrees(prometheus, "idle", since, [blind], quiet)


async def test_a_paused_instance_fires_instance_paused(
    ops: tuple[Gateway, Prometheus, float], receiver: Receiver
) -> None:
    gateway, prometheus, _ = ops
    since = time.time()
    tenant_id, key = await gateway.tenant()
    name = await gateway.instance(tenant_id, key, receiver.url())
    status, body = await gateway.call(
        "POST", f"/instance/{name}/pause", key=key, json={"reason": "holiday"}
    )
    assert 200 == status, body
    await send(gateway, key, name)  # held by the pause
    await eventually(
        lambda: _fires(prometheus, "LanegateInstancePaused", state="paused"), timeout=30
    )
    assert 1 == await _value(prometheus, 'sum(lanegate_instances{state="paused"})')
    await _promtool_agrees(prometheus, "instance-paused", since, ["LanegateInstancePaused"])
    status, body = await gateway.call("POST", f"/instance/{name}/resume", key=key)
    assert 200 == status, body

    await eventually(lambda: _resolved(prometheus, "LanegateInstancePaused"), timeout=30)


async def test_a_receiver_down_fires_the_webhook_backlog_alert(
    ops: tuple[Gateway, Prometheus, float],
) -> None:
    gateway, prometheus, _ = ops
    since = time.time()
    down = Receiver(answer=lambda _: 503).start()
    try:
        tenant_id, key = await gateway.tenant()
        await gateway.instance(tenant_id, key, down.url())  # its `open` webhook fails
        await eventually(lambda: _fires(prometheus, "LanegateWebhookBacklog"), timeout=30)
        assert (await _value(prometheus, "max(lanegate_webhook_deliveries_retrying)") or 0) >= 1
        await _promtool_agrees(prometheus, "receiver-down", since, ["LanegateWebhookBacklog"])
    finally:
        down.stop()


async def test_a_number_the_provider_cannot_reach_fires_the_provider_error_alert(
    ops: tuple[Gateway, Prometheus, float], receiver: Receiver
) -> None:
    gateway, prometheus, _ = ops
    tenant_id, key = await gateway.tenant()
    unreachable = "5491100000009"
    fields = {"providerConfig": {"failNumbers": [unreachable]}}
    name = await gateway.instance(tenant_id, key, receiver.url(), fields=fields)
    failed = await send(gateway, key, name, to=unreachable)
    await wait_status(gateway, "failed", failed)

    # A labelled counter appears at its first increment, which rate() cannot see: the
    # alert is about failures that go on, so a second one shows it.
    expr = 'sum(lanegate_messages_failed_total{provider="sandbox",code="undeliverable"})'
    await eventually(lambda: _is(prometheus, expr, 1), timeout=30)
    await wait_status(gateway, "failed", await send(gateway, key, name, to=unreachable))
    await eventually(
        lambda: _fires(
            prometheus, "LanegateProviderErrorRatioHigh", provider="sandbox", code="undeliverable"
        ),
        timeout=30,
    )


async def test_an_endpoint_answering_410_shows_on_the_endpoints_disabled_panel(
    ops: tuple[Gateway, Prometheus, float],
) -> None:
    gateway, prometheus, _ = ops
    gone = Receiver(answer=lambda _: 410).start()
    try:
        tenant_id, key = await gateway.tenant()
        await gateway.instance(tenant_id, key, gone.url())

        async def on_the_panel() -> bool:
            value = await _value(prometheus, _panel_expr("webhooks.json", "Endpoints disabled"))
            return (value or 0) > 0

        await eventually(on_the_panel, timeout=30)
    finally:
        gone.stop()


async def test_a_stopped_store_fires_dependency_down(
    ops: tuple[Gateway, Prometheus, float],
) -> None:
    gateway, prometheus, _ = ops
    since = time.time()
    stack = gateway.stack
    proxy = StoreProxy(stack.store_port)
    await proxy.start()
    await asyncio.to_thread(stack.stop, "template_sync")
    await asyncio.to_thread(stack.start, "template_sync", env={"LANEGATE_MONGO_URI": proxy.uri})
    try:
        await proxy.close()  # the store is gone for template-sync
        await eventually(
            lambda: _fires(
                prometheus, "LanegateDependencyDown", job="template-sync", dependency="store"
            ),
            timeout=30,
        )
        await _promtool_agrees(prometheus, "store-stopped", since, ["LanegateDependencyDown"])
        # What probes then answer (the readiness panel shows them).
        expr = 'lanegate_http_requests_total{job="template-sync",route="/readyz",status="503"}'
        # rate() sees a counter's rise, not its first appearance: two probes, each scraped.
        assert not await gateway.ready("template_sync")
        await eventually(lambda: _is(prometheus, expr, 1), timeout=30)
        assert not await gateway.ready("template_sync")
        await eventually(lambda: _is(prometheus, expr, 2), timeout=30)
    finally:
        await asyncio.to_thread(stack.stop, "template_sync")
        await asyncio.to_thread(stack.start, "template_sync")

    await eventually(lambda: _resolved(prometheus, "LanegateDependencyDown"), timeout=30)


async def test_stopped_services_fire_their_down_alerts(
    ops: tuple[Gateway, Prometheus, float],
) -> None:
    gateway, prometheus, _ = ops
    stack = gateway.stack
    since = time.time()
    jobs = [job for job in SERVICES if job != "lane-scheduler"]
    try:
        for job in jobs:
            await asyncio.to_thread(stack.stop, SERVICES[job][0])
        down = f'count(up{{job=~"{"|".join(jobs)}"}} == 0)'
        await eventually(lambda: _is(prometheus, down, len(jobs)), timeout=30)
        await _promtool_agrees(
            prometheus,
            "services-stopped",
            since,
            [
                "LanegateIngressApiDown",
                "LanegateProviderSenderDown",
                "LanegateWebhookDispatcherDown",
                "LanegateTemplateSyncDown",
                "LanegateTargetDown",
            ],
            ["LanegateLaneSchedulerDown"],
        )
    finally:
        for job in jobs:
            await asyncio.to_thread(stack.start, SERVICES[job][0])


async def test_killed_scheduler_replicas_fire_the_ownership_alerts(
    ops: tuple[Gateway, Prometheus, float],
) -> None:
    gateway, prometheus, _ = ops
    doomed = await _value(
        prometheus,
        f'sum(lanegate_scheduler_owned_shards{{instance="127.0.0.1:{gateway.stack.ports[SECOND_SCHEDULER]}"}})',
    )
    assert doomed is not None and 0 < doomed < SHARDS
    since = time.time()
    gateway.stack.kill(SECOND_SCHEDULER)
    await eventually(lambda: _fires(prometheus, "LanegateSchedulerOwnershipGap"), timeout=30)
    gap = await prometheus.query('ALERTS{alertname="LanegateSchedulerOwnershipGap"}')
    assert gap and doomed == await _value(prometheus, "64 - sum(lanegate_scheduler_owned_shards)")
    assert not await _fires(prometheus, "LanegateNoSchedulerOwnsInstances")
    await _promtool_agrees(
        prometheus,
        "one-scheduler-killed",
        since,
        ["LanegateSchedulerOwnershipGap", "LanegateTargetDown"],
        ["LanegateNoSchedulerOwnsInstances", "LanegateLaneSchedulerDown"],
    )

    gateway.stack.kill("lane_scheduler")
    await eventually(lambda: _fires(prometheus, "LanegateNoSchedulerOwnsInstances"), timeout=30)
    await eventually(lambda: _fires(prometheus, "LanegateTargetDown", job="lane-scheduler"))
    await _promtool_agrees(
        prometheus,
        "both-schedulers-killed",
        since,
        ["LanegateNoSchedulerOwnsInstances", "LanegateLaneSchedulerDown", "LanegateTargetDown"],
    )


def _panels() -> Iterator[tuple[str, str, str]]:
    """Every (dashboard file, panel title, expression), with Grafana's variables filled in."""
    for path in sorted(DASHBOARDS_DIR.glob("*.json")):
        for panel in json.loads(path.read_text())["panels"]:
            for target in panel["targets"]:
                expr = target["expr"].replace("$__rate_interval", "1m")
                yield path.name, panel["title"], expr.replace("$instance", ".*")


def _panel_expr(dashboard: str, title_start: str) -> str:
    [expr] = [e for d, t, e in _panels() if d == dashboard and t.startswith(title_start)]
    return expr


async def test_every_panel_had_data_in_some_scenario(
    ops: tuple[Gateway, Prometheus, float],
) -> None:
    _, prometheus, started = ops
    empty: set[tuple[str, str]] = set()
    with_data: set[tuple[str, str]] = set()
    for dashboard, title, expr in _panels():
        series = await prometheus.query_range(expr, started, time.time())
        values = [v for s in series for _, v in s["values"] if v not in ("NaN", "+Inf", "-Inf")]
        (with_data if values else empty).add((dashboard, title))
    assert set(NO_DATA_HERE) == empty - with_data
