"""Log lines name their service, whichever context logs them."""

import json
import subprocess
import sys

# A line logged in a request's context, and one from a task started in a context of its own
# (as grouped writers are), in a process whose logging is set up as each service's is.
PROBE = """
import asyncio, contextvars, structlog
from lanegate import logging
logging.configure(service="probe")
log = structlog.get_logger()
structlog.contextvars.bind_contextvars(request_id="r1")
log.info("in the request")
async def write():
    log.info("in a writer")
async def main():
    await asyncio.get_running_loop().create_task(write(), context=contextvars.Context())
asyncio.run(main())
"""


def test_every_line_names_its_service_even_from_a_context_of_its_own() -> None:
    ran = subprocess.run(
        [sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, timeout=60
    )
    lines = [json.loads(line) for line in ran.stderr.splitlines()]
    assert [("in the request", "probe", "r1"), ("in a writer", "probe", None)] == [
        (line["event"], line.get("service"), line.get("request_id")) for line in lines
    ]
