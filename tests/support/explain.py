"""Which index a query runs on, read from an explain of MongoDB or of a wire store."""

from typing import Any


def index_used(explained: dict[str, Any]) -> str | None:
    """The index an explain says the query uses (MongoDB's or the wire store's format)."""
    if "hinted_index" in explained:
        return str(explained["hinted_index"])
    stage = explained["queryPlanner"]["winningPlan"]
    while "indexName" not in stage:
        stage = stage["inputStage"]
    return str(stage["indexName"])


def postgresql_index_conditions(explained: dict[str, Any]) -> list[str]:
    """The conditions FerretDB's PostgreSQL plan answers from an index, outermost first
    (none when it scans the table, or when the explain is not FerretDB's on PostgreSQL)."""
    plan = explained.get("queryPlanner", {}).get("Plan")
    conditions: list[str] = []
    nodes = [plan] if isinstance(plan, dict) else []
    while nodes:
        node = nodes.pop(0)
        if "Index Cond" in node:
            conditions.append(str(node["Index Cond"]))
        nodes += node.get("Plans", [])
    return conditions
