"""The conversation and chat-list reads, as the routes issue them, explained on each engine.

What each engine can say:
- MongoDB plans with indexes: the plan must use the read's index and hold no COLLSCAN.
- mongoeco answers explain with the index its hint chose (`hinted_index`); its in-memory
  engine then runs every find as a scan whatever the index, so that is all it can show.
- FerretDB v1 answers with its backend's plan. It hands the top-level equalities (tenant,
  contact, instance) to PostgreSQL as `_jsonb->'field' @> value`, which its own B-tree
  indexes on `(_jsonb->'field')` cannot serve, and it sorts itself. On PostgreSQL the GIN
  indexes `make postgres` has made beside FerretDB's (tools/postgres/index-mirror.sql) can:
  the plan must read through one of them, deep cursor pages included, with the tenant among
  what it hands over. On SQLite nothing is handed over at all, and every read is a scan.
  docs/benchmarks.md gives what each costs at 1M messages.
"""

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from ingress_api.contact_book import Read, chat_list_read, conversation_reads
from ingress_api.requests import newest_first_cursor
from lanegate.events import new_id, utcnow
from lanegate.store import Store
from tests.store.test_conformance import db, engine, engine_uri
from tests.support.explain import index_used, postgresql_index_conditions

__all__ = ["db", "engine", "engine_uri"]  # the conformance module's engines, shared

TENANT = "t1"
INSTANCE = "t1__support__main"
ANA = "5491155550001"
CURSOR = newest_first_cursor(utcnow() - timedelta(minutes=5), "m")

READS: dict[str, Callable[[str | None], Read]] = {
    "conversation, sent": lambda c: conversation_reads(TENANT, ANA, None, c)[0],
    "conversation, received": lambda c: conversation_reads(TENANT, ANA, None, c)[1],
    "conversation on one instance, sent": lambda c: conversation_reads(TENANT, ANA, INSTANCE, c)[0],
    "conversation on one instance, received": lambda c: conversation_reads(
        TENANT, ANA, INSTANCE, c
    )[1],
    "chat list": lambda c: chat_list_read(TENANT, None, c),
    "chat list of one instance": lambda c: chat_list_read(TENANT, INSTANCE, c),
}


async def _history(db: Store) -> None:
    """A little history of two contacts, so each read has something to find."""
    now = utcnow()
    for n, contact in enumerate((ANA, "5491155550002")):
        at = now - timedelta(minutes=n)
        common = {"tenantId": TENANT, "instanceName": INSTANCE, "type": "text"}
        await db.messages.insert_one(
            common | {"_id": new_id(), "to": contact, "createdAt": at, "status": "sent"}
        )
        await db.inbound_messages.insert_one(
            common
            | {"_id": new_id(), "providerMessageId": new_id(), "from": contact, "receivedAt": at}
        )
        await db.chats.insert_one(
            common | {"_id": new_id(), "contact": contact, "lastMessageAt": at, "unread": 1}
        )


def _stages(plan: dict[str, Any]) -> list[str]:
    """Every stage of a MongoDB winning plan, outermost first."""
    stages = [plan["stage"]]
    for child in [plan.get("inputStage"), *plan.get("inputStages", [])]:
        if child:
            stages += _stages(child)
    return stages


@pytest.mark.parametrize("cursor", [None, CURSOR], ids=["first page", "cursor page"])
@pytest.mark.parametrize("name", list(READS))
async def test_history_reads_are_planned_on_their_index(
    db: Store, name: str, cursor: str | None
) -> None:
    await _history(db)
    read = READS[name](cursor)
    explained = await read.find(db, 31).explain()
    server = explained.get("serverInfo", {})
    if "ferretdbVersion" in server:
        plan = explained["queryPlanner"]["Plan"]
        if isinstance(plan, dict):  # PostgreSQL's plan; SQLite answers a list of lines
            assert explained["filterPushdown"]
            conditions = postgresql_index_conditions(explained)
            assert conditions, f"a table scan: {plan['Node Type']}"
            assert all("@>" in condition for condition in conditions)
            handed = " ".join([*conditions, plan.get("Filter", ""), plan.get("Recheck Cond", "")])
            assert f"'tenantId'::text) @> '\"{TENANT}\"'" in handed
        else:
            assert all("SCAN" in line for line in plan)
    elif "hinted_index" in explained:  # mongoeco
        assert (read.index, False) == (
            explained["hinted_index"],
            explained["details"]["hintedIndexIsVirtual"],
        )
    else:
        winning = explained["queryPlanner"]["winningPlan"]
        assert "COLLSCAN" not in _stages(winning)
        assert read.index == index_used(explained)
