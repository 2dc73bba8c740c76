"""The image's HEALTHCHECK: ask the service a process runs for `/healthz` on that service's port.

`python -m lanegate.healthcheck [PID]` (PID 1, the container's command, by default) finds the
service from the process's command line (`python -m <service>`) and its port from the
settings, so one HEALTHCHECK line fits every service and a moved port moves with it.
"""

import itertools
import sys
import urllib.request
from pathlib import Path

from lanegate.settings import Settings

# Each service's package and the settings field holding its HTTP port.
SERVICE_PORT_FIELDS = {
    "ingress_api": "ingress_port",
    "lane_scheduler": "scheduler_port",
    "provider_sender": "sender_port",
    "webhook_dispatcher": "dispatcher_port",
    "template_sync": "template_sync_port",
}
TIMEOUT_SECONDS = 4.0


def service_of(command: list[str]) -> str | None:
    """The service a command line runs (`python -m <service>`), or None."""
    for flag, module in itertools.pairwise(command):
        if flag == "-m" and module in SERVICE_PORT_FIELDS:
            return module
    return None


def health_url(command: list[str], settings: Settings) -> str:
    """Where the service of `command` answers `/healthz`; ValueError when it runs none."""
    service = service_of(command)
    if service is None:
        raise ValueError(f"not a lanegate service: {' '.join(command)!r}")
    port = getattr(settings, SERVICE_PORT_FIELDS[service])
    return f"http://127.0.0.1:{port}/healthz"


def main() -> None:
    pid = sys.argv[1] if len(sys.argv) > 1 else "1"
    raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    command = [part.decode() for part in raw.split(b"\0") if part]
    try:
        url = health_url(command, Settings())
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as response:
            healthy = response.status == 200
    except (OSError, ValueError) as e:
        print(f"unhealthy: {e}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0 if healthy else 1)


if __name__ == "__main__":
    main()
