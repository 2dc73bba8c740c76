"""The end check of a fault run, from the sandbox phone's record and the receivers' records.

Waits until every message reached a final state (capped queues are flushed
once their cap is used up) and every webhook delivery settled, then counts:
losses, duplicate sends, lane gaps and caps broken, events never delivered.
"""

import asyncio
import itertools
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from lanegate.events import status_event_id
from tests.faults.injectors import Injected
from tests.faults.workload import LANE_NAMES, Instance, Workload
from tests.support.gateway import Gateway

DB = "lanegate_test"
FINAL = ("sent", "failed", "canceled", "expired")
IN_FLIGHT = ("dispatching", "sending", "deferred")
# Failures a fault explains: the sandbox refusing past the last attempt, or a send
# interrupted by a crash whose outcome the gateway would not guess.
FAULT_FAILURES = ("sandbox_unavailable", "timeout", "outcome_unknown")
CLOCK_TOLERANCE = 0.005
HOUR = 3600.0
# The settle loop reads the open messages from the store the run is waiting on (the embedded
# store answers one request at a time): while many are open it reads seldom, so it does not
# take the store's time from the gateway it is waiting for.
POLL_SECONDS = 1.5
BUSY_POLL_SECONDS = 10.0
BUSY = 100


@dataclass
class Verdict:
    counts: dict[str, int] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)

    def table(self, faults: list[Injected]) -> str:
        lines = ["", "faults injected:", f"  {'fault':<32} {'times':>5} {'seconds':>8}"]
        by_name: dict[str, list[Injected]] = {}
        for injected in faults:
            by_name.setdefault(injected.fault, []).append(injected)
        for name, runs in by_name.items():
            lines.append(f"  {name:<32} {len(runs):>5} {sum(r.seconds for r in runs):>8.1f}")
        lines += ["counts:"]
        lines += [f"  {name:<40} {value:>7}" for name, value in self.counts.items()]
        lines += [f"problems: {len(self.problems)}"]
        lines += [f"  {problem}" for problem in self.problems[:50]]
        return "\n".join(lines)


async def _messages(
    gateway: Gateway, workload: Workload, *, open_only: bool = False
) -> list[dict[str, Any]]:
    """The run's messages (with `open_only`, those not final yet: a long run's settle loop
    polls the store often, and should not read every message each time)."""
    query: dict[str, Any] = {"tenantId": {"$in": [t.id for t in workload.tenants]}}
    if open_only:
        query["status"] = {"$nin": list(FINAL)}
    fields = {
        "status": 1,
        "instanceName": 1,
        "lane": 1,
        "error": 1,
        "tenantId": 1,
        "externalId": 1,
        "dispatchedAt": 1,
    }
    async with gateway.mongo() as client:
        return [doc async for doc in client[DB].messages.find(query, fields)]


async def _exhausted(gateway: Gateway, workload: Workload, name: str) -> set[str]:
    """The capped lanes of an instance whose cap is used up (per its lane_state)."""
    async with gateway.mongo() as client:
        state = await client[DB].lane_state.find_one({"_id": name}) or {}
    usage = state.get("usage") or {}
    instance = workload.instances[name]
    used: set[str] = set()
    for lane in LANE_NAMES:
        policy = instance.policy(lane)
        hour = len((usage.get("hour") or {}).get(lane, []))
        day = int((usage.get("dayCounts") or {}).get(lane, 0))
        if (policy.per_hour and hour >= policy.per_hour) or (
            policy.per_day and day >= policy.per_day
        ):
            used.add(lane)
    return used


async def settle(
    gateway: Gateway, workload: Workload, *, timeout: float, stall: float | None = None
) -> None:
    """Wait until every message is final and every delivery settled; flush used-up caps.

    Fails after `timeout` seconds, or sooner once no message has become final for `stall`
    seconds while some are open (a long run on a slow store goes on while its messages keep
    going)."""
    started = time.monotonic()
    deadline, progress_at, fewest = started + timeout, started, None
    flushed: set[str] = set()
    last: int | None = None
    waiting: Counter[str] = Counter()
    while True:
        open_ = await _messages(gateway, workload, open_only=True)
        if fewest is None or len(open_) < fewest:
            fewest, progress_at = len(open_), time.monotonic()
        before, waiting = waiting, Counter(m["instanceName"] for m in open_)
        for instance in workload.capped():
            mine = [m for m in open_ if m["instanceName"] == instance.name]
            if not mine or instance.name in flushed:
                continue
            # Only an instance whose line has stopped moving can be held by a cap.
            if waiting[instance.name] != before[instance.name]:
                continue
            if any(m["status"] in IN_FLIGHT for m in mine):
                continue
            used = await _exhausted(gateway, workload, instance.name)
            if all(m["lane"] in used for m in mine):
                status, body = await gateway.call(
                    "POST", f"/instance/{instance.name}/queue/flush", key=instance.key
                )
                assert 200 == status, body
                flushed.add(instance.name)
        settled = None if open_ else await _deliveries_settled(gateway, workload)
        # Quiet twice in a row: late receipts (delivered, read) make new deliveries.
        if not open_ and settled is not None and settled == last:
            return
        last = settled if not open_ else None
        now = time.monotonic()
        # Only messages count: once all are final, deliveries have until the deadline.
        stalled = stall is not None and bool(open_) and now - progress_at > stall
        if now > deadline or stalled:
            why = (
                f"nothing settled for {stall:.0f} s"
                if stalled
                else f"not settled in {timeout:.0f} s"
            )
            raise TimeoutError(
                f"{why} ({now - started:.0f} s in): " + await _stuck(gateway, workload, open_)
            )
        await asyncio.sleep(BUSY_POLL_SECONDS if len(open_) > BUSY else POLL_SECONDS)


async def _stuck(gateway: Gateway, workload: Workload, open_: list[dict[str, Any]]) -> str:
    """What still waits, per instance and lane, with the instance's state and cap usage."""
    capped = {i.name for i in workload.capped()}
    by_place = Counter((m["instanceName"], m["lane"], m["status"]) for m in open_)
    lines = [f"open: {', '.join(m['_id'] for m in open_[:5])}"]
    async with gateway.mongo() as client:
        for (name, lane, status), count in sorted(by_place.items()):
            instance = await client[DB].instances.find_one({"_id": name}) or {}
            used = await _exhausted(gateway, workload, name)
            lines.append(
                f"{name} {lane} {status} x{count} (capped: {name in capped}, cap used: "
                f"{lane in used}, state: {instance.get('state')}, paused: {instance.get('paused')})"
            )
    open_deliveries = [
        d for d in await _deliveries(gateway, workload) if d["status"] in ("pending", "retrying")
    ]
    lines.append(f"deliveries still open: {len(open_deliveries)}")
    return "\n".join(lines)


async def _deliveries(gateway: Gateway, workload: Workload) -> list[dict[str, Any]]:
    fields = {"status": 1, "event": 1, "instanceName": 1, "messageId": 1}
    async with gateway.mongo() as client:
        cursor = client[DB].webhook_deliveries.find(
            {"instanceName": {"$in": list(workload.instances)}}, fields
        )
        return [doc async for doc in cursor]


async def _deliveries_settled(gateway: Gateway, workload: Workload) -> int | None:
    """How many deliveries there are, once none is waiting for an attempt (else None)."""
    mine = {"instanceName": {"$in": list(workload.instances)}}
    async with gateway.mongo() as client:
        deliveries = client[DB].webhook_deliveries
        if await deliveries.count_documents({**mine, "status": {"$in": ["pending", "retrying"]}}):
            return None
        return await deliveries.count_documents(mine)


async def judge(gateway: Gateway, workload: Workload, faults: list[Injected]) -> Verdict:
    """Count everything and list every loss, duplicate, gap or cap broken."""
    verdict = Verdict()
    counts, problems = verdict.counts, verdict.problems
    messages = {m["_id"]: m for m in await _messages(gateway, workload)}
    async with gateway.mongo() as client:
        outbox = [
            doc
            async for doc in client[DB].sandbox_outbox.find(
                {"instanceName": {"$in": list(workload.instances)}}
            )
        ]
    counts["messages accepted (202)"] = len(workload.accepted)
    counts["send requests refused (down, 503), retried"] = workload.refused
    counts["sends given up by the client"] = workload.given_up
    counts["messages in the store"] = len(messages)
    for status in FINAL:
        counts[f"messages {status}"] = sum(1 for m in messages.values() if m["status"] == status)
    for message_id in workload.accepted:
        if message_id not in messages:
            problems.append(f"lost: accepted message {message_id} is not in the store")
    # A repeat after a lost answer is the first message when the send has an externalId; a
    # keyed message the client never heard of is a problem (unless it gave up on one).
    unheard = [m for m_id, m in messages.items() if m_id not in workload.accepted]
    unheard_keyed = [m["_id"] for m in unheard if m.get("externalId")]
    counts["unkeyed messages stored twice (an answer lost)"] = len(unheard) - len(unheard_keyed)
    counts["keyed messages the client never heard of"] = len(unheard_keyed)
    if len(unheard_keyed) > workload.given_up:
        problems += [f"keyed, stored, never answered: {m_id}" for m_id in unheard_keyed]
    for message in messages.values():
        if message["status"] not in FINAL:
            problems.append(f"not final: {message['_id']} is {message['status']}")
        if message["status"] == "failed":
            code = (message.get("error") or {}).get("code")
            counts[f"failed with {code}"] = counts.get(f"failed with {code}", 0) + 1
            if code not in FAULT_FAILURES:
                problems.append(f"failed for no fault: {message['_id']} ({code})")
    _check_outbox(workload, messages, outbox, verdict)
    await _check_webhooks(gateway, workload, messages, verdict)
    return verdict


def caps_broken(instance: Instance, lane: str, sends: list[datetime]) -> list[str]:
    """How a lane's sends (their dispatch times, UTC) break its caps: more than `perHour` in a
    rolling hour, or more than `perDay` on a calendar day (the run's instances keep the default
    timezone, UTC, and a long run may cross midnight)."""
    policy, times, broken = instance.policy(lane), sorted(sends), []
    if policy.per_day:
        for day, used in sorted(Counter(t.date() for t in times).items()):
            if used > policy.per_day:
                broken.append(f"{used} {lane} sends on {day}, cap {policy.per_day} a day")
    if policy.per_hour:
        first, most = 0, 0
        for last, at in enumerate(times):
            while (at - times[first]).total_seconds() >= HOUR - CLOCK_TOLERANCE:
                first += 1
            most = max(most, last - first + 1)
        if most > policy.per_hour:
            broken.append(f"{most} {lane} sends in an hour, cap {policy.per_hour} an hour")
    return broken


def _check_outbox(
    workload: Workload,
    messages: dict[str, dict[str, Any]],
    outbox: list[dict[str, Any]],
    verdict: Verdict,
) -> None:
    counts, problems = verdict.counts, verdict.problems
    counts["received by the sandbox phone"] = len(outbox)
    duplicates = [doc for doc in outbox if doc["received"] != 1]
    counts["received more than once"] = len(duplicates)
    problems += [f"sent {d['received']} times: {d['_id']}" for d in duplicates]
    for doc in outbox:
        status = messages.get(doc["_id"], {}).get("status")
        if status != "sent":
            problems.append(f"the phone got {doc['_id']} but the gateway says {status}")
    sent = {m_id for m_id, m in messages.items() if m["status"] == "sent"}
    missing = sent - {doc["_id"] for doc in outbox}
    problems += [f"sent but the phone never got it: {m_id}" for m_id in sorted(missing)]
    gaps = caps = 0
    for name, instance in workload.instances.items():
        mine = sorted((d for d in outbox if d["instanceName"] == name), key=lambda d: d["sentAt"])
        for before, after in itertools.pairwise(mine):
            gap = (after["sentAt"] - before["sentAt"]).total_seconds()
            if gap < instance.min_gap(after["lane"]) - CLOCK_TOLERANCE:
                gaps += 1
                problems.append(
                    f"gap broken on {name}: {gap * 1000:.0f} ms before a {after['lane']} "
                    f"message (minimum {instance.min_gap(after['lane']) * 1000:.0f} ms)"
                )
        # A cap counts dispatches: each send at its message's dispatch.
        for lane in LANE_NAMES:
            sends = [
                messages.get(d["_id"], {}).get("dispatchedAt") or d["sentAt"]
                for d in mine
                if d["lane"] == lane
            ]
            broken = caps_broken(instance, lane, sends)
            caps += len(broken)
            problems += [f"cap broken on {name}: {b}" for b in broken]
    counts["lane gaps broken"] = gaps
    counts["lane caps broken"] = caps


async def _check_webhooks(
    gateway: Gateway, workload: Workload, messages: dict[str, dict[str, Any]], verdict: Verdict
) -> None:
    counts, problems = verdict.counts, verdict.problems
    deliveries = await _deliveries(gateway, workload)
    records = {d["_id"]: d for d in deliveries}
    seen: Counter[str] = Counter()
    for tenant in workload.tenants:
        for request in tenant.receiver.matching(lambda _: True):
            seen[request.headers["webhook-id"]] += 1
            json.loads(request.body)  # every body a receiver got is whole JSON
    counts["webhook events recorded"] = len(records)
    counts["webhook events delivered"] = sum(1 for d in deliveries if d["status"] == "delivered")
    counts["webhook requests received"] = sum(seen.values())
    counts["webhook events after dedupe by webhook-id"] = len(seen)
    counts["webhook repeats removed by dedupe"] = sum(seen.values()) - len(seen)
    for record in deliveries:
        if record["status"] != "delivered":
            problems.append(f"webhook {record['_id']} ({record['event']}) is {record['status']}")
        elif record["_id"] not in seen:
            problems.append(f"webhook {record['_id']} delivered but no receiver has it")
    unknown = set(seen) - set(records)
    problems += [f"a receiver got {event_id}, which has no delivery record" for event_id in unknown]
    missing = 0
    for message_id, message in messages.items():
        status = message["status"]
        if status in ("sent", "failed", "expired") and (
            status_event_id(message_id, status) not in records
        ):
            missing += 1
            problems.append(f"no {status} event for {message_id}")
    counts["final states with no event"] = missing
