"""A RabbitMQ node of the fault suite's own, so stopping it never touches the shared broker.

The node runs from Debian's scripts with its own name, ports, data, logs,
config and Erlang cookie (a fresh one in a private HOME, so `rabbitmqctl`
here cannot even reach the machine's shared node).
"""

import os
import secrets
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

BIN = Path("/usr/lib/rabbitmq/bin")


def low_free_port() -> int:
    """A free TCP port below Linux's ephemeral range (RabbitMQ's listener fails inside it here)."""
    rng = secrets.SystemRandom()
    for _ in range(200):
        port = rng.randrange(20000, 32000)
        if port in (25672, 25673):  # the shared node's distribution port and its neighbour
            continue
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError("no free port below 32000")


def available() -> bool:
    """True when Debian's RabbitMQ scripts are installed."""
    return (BIN / "rabbitmq-server").exists() and (BIN / "rabbitmqctl").exists()


@dataclass
class RabbitNode:
    """One private node: `start()`, fault controls, and `shutdown()`."""

    base: Path
    name: str = field(default_factory=lambda: f"lgfaults{secrets.token_hex(3)}@localhost")
    port: int = field(default_factory=low_free_port)
    dist_port: int = field(default_factory=low_free_port)

    @property
    def url(self) -> str:
        return f"amqp://guest:guest@127.0.0.1:{self.port}/"

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("RABBITMQ_", "ERL_"))}
        return env | {
            "HOME": str(self.base / "home"),
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
        }

    def start(self, timeout: float = 90) -> "RabbitNode":
        """Start the node detached and wait until it accepts AMQP connections."""
        home = self.base / "home"
        for folder in (home, self.base / "mnesia", self.base / "log"):
            folder.mkdir(parents=True, exist_ok=True)
        cookie = home / ".erlang.cookie"
        if not cookie.exists():
            cookie.write_text(secrets.token_hex(16).upper())
            cookie.chmod(0o400)
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        (self.base / "rabbitmq.conf").write_text("# the lanegate fault suite's own node\n")
        subprocess.run(
            [str(BIN / "rabbitmq-server"), "-detached"], env=self._env(), check=True, timeout=30
        )
        self.wait_ready(timeout)
        return self

    def ctl(self, *args: str, timeout: float = 60) -> str:
        """Run `rabbitmqctl -n <this node> ...`; raises on failure."""
        done = subprocess.run(
            [str(BIN / "rabbitmqctl"), "-n", self.name, *args],
            env=self._env(),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if done.returncode != 0:
            raise RuntimeError(f"rabbitmqctl {' '.join(args)} failed: {done.stderr or done.stdout}")
        return done.stdout

    def wait_ready(self, timeout: float = 60) -> None:
        """Wait until the node's AMQP port accepts connections."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                self.ctl("await_startup", "--timeout", "5", timeout=15)
                with socket.create_connection(("127.0.0.1", self.port), timeout=1):
                    return
            except (OSError, RuntimeError, subprocess.TimeoutExpired):
                if time.monotonic() > deadline:
                    raise TimeoutError(f"RabbitMQ node {self.name} did not start") from None
                time.sleep(0.5)

    def stop_app(self) -> None:
        self.ctl("stop_app")

    def start_app(self) -> None:
        self.ctl("start_app")
        self.wait_ready()

    def close_all_connections(self) -> None:
        self.ctl("close_all_connections", "lanegate fault suite: forced connection drop")

    def shutdown(self) -> None:
        """Stop the node and its Erlang VM; kill it if it does not go."""
        try:
            self.ctl("shutdown", timeout=60)
        except (RuntimeError, subprocess.TimeoutExpired):
            pid_file = self.base / "node.pid"
            if pid_file.exists():
                os.kill(int(pid_file.read_text().strip()), 9)
