"""A real Prometheus (Debian's package) scraping a test stack every second with the deploy
alert rules loaded, and its HTTP query API."""

import contextlib
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from devtools.stack import free_port, wait_http

REPO = Path(__file__).resolve().parents[2]
RULES_FILE = REPO / "deploy" / "prometheus" / "rules.yml"
SCRAPE_SECONDS = 1


def fast_rules(rules: dict[str, Any]) -> dict[str, Any]:
    """The deploy rules with every `for` cut to one scrape: the expressions are the ones
    under test here; how long each waits is promtool's to check (tests/deploy/rules_test.yml)."""
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = f"{SCRAPE_SECONDS}s"
    return rules


def scrape_config(jobs: dict[str, list[str]], rules_file: Path) -> dict[str, Any]:
    """A Prometheus config scraping `jobs` (job name -> host:port targets) every second."""
    interval = f"{SCRAPE_SECONDS}s"
    return {
        "global": {"scrape_interval": interval, "evaluation_interval": interval},
        "rule_files": [str(rules_file)],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": targets}]}
            for job, targets in jobs.items()
        ],
    }


@dataclass
class Prometheus:
    """A running Prometheus and what it answers."""

    url: str

    async def query(self, expr: str, at: float | None = None) -> list[dict[str, Any]]:
        """An instant query's result vector (empty when nothing matches), now or `at`."""
        params = {"query": expr} | ({} if at is None else {"time": str(at)})
        return await self._get("/api/v1/query", params)

    async def query_range(self, expr: str, start: float, end: float) -> list[dict[str, Any]]:
        """A range query's series, one point a second."""
        params = {"query": expr, "start": str(start), "end": str(end), "step": "1"}
        return await self._get("/api/v1/query_range", params)

    async def firing(self) -> dict[str, list[dict[str, str]]]:
        """Alerts firing now: alert name -> the label sets it fires with."""
        alerts: dict[str, list[dict[str, str]]] = {}
        for sample in await self.query('ALERTS{alertstate="firing"}'):
            labels = dict(sample["metric"])
            alerts.setdefault(labels["alertname"], []).append(labels)
        return alerts

    async def rule_count(self) -> int:
        """How many alerting rules Prometheus has loaded."""
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.url + "/api/v1/rules", params={"type": "alert"}) as response,
        ):
            body = await response.json()
        return sum(len(group["rules"]) for group in body["data"]["groups"])

    async def _get(self, path: str, params: dict[str, str]) -> list[dict[str, Any]]:
        async with (
            aiohttp.ClientSession() as http,
            http.get(self.url + path, params=params) as response,
        ):
            body = await response.json()
        assert body["status"] == "success", body
        return list(body["data"]["result"])


@contextlib.contextmanager
def running_prometheus(jobs: dict[str, list[str]], work_dir: Path) -> Iterator[Prometheus]:
    """Start Prometheus on a free port over `jobs` with the fast deploy rules; stop it after."""
    executable = shutil.which("prometheus")
    assert executable, "prometheus not found: `make tools` installs Debian's prometheus package"
    work_dir = work_dir.resolve()  # Prometheus reads rule paths from the config's folder
    work_dir.mkdir(parents=True, exist_ok=True)
    rules_file = work_dir / "rules.yml"
    rules_file.write_text(yaml.safe_dump(fast_rules(yaml.safe_load(RULES_FILE.read_text()))))
    config_file = work_dir / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(scrape_config(jobs, rules_file)))
    port = free_port()
    with (work_dir / "prometheus.log").open("w") as log:
        process = subprocess.Popen(
            [
                executable,
                f"--config.file={config_file}",
                f"--storage.tsdb.path={work_dir / 'data'}",
                f"--web.listen-address=127.0.0.1:{port}",
            ],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        url = f"http://127.0.0.1:{port}"
        wait_http(url + "/-/ready", 30)
        prometheus = Prometheus(url)
        yield prometheus
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
