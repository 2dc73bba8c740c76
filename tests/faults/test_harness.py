"""The fault harness itself: a service that does not get ready is a finding, not an error."""

from pathlib import Path

from devtools.stack import Stack
from tests.faults.injectors import LOG_LINES, unready


async def test_a_service_not_answering_readyz_is_a_finding_with_its_logs_last_lines(
    tmp_path: Path,
) -> None:
    stack = Stack.create(tmp_path, settings={})  # nothing listens on its ports
    lines = [f'{{"event": "line {n}"}}' for n in range(LOG_LINES + 5)]
    (tmp_path / "lane_scheduler.log").write_text("\n".join(lines) + "\n")

    [finding] = await unready(stack, ["lane_scheduler"], timeout=0.5)

    assert finding.startswith("lane_scheduler not ready 0 s after its start")
    assert finding.endswith("\n".join(lines[-LOG_LINES:]))
    assert lines[-LOG_LINES - 1] not in finding
