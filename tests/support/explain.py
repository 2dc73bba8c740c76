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
