"""promtool unit tests made from what a real Prometheus scraped off the running gateway.

A scenario of tests/ops ends once Prometheus (rules cut to `for: 1s`) fires the alerts it is
about. `captured_case` then reads every series the deploy rules query, second by second from
the scenario's start until the next whole second (waiting until it is stored), as one
promtool test: each captured second becomes a minute and the state at the end is held (a
series that went away stays away). What must fire then comes from the same data: each alert's
expression queried at the end, with the rule's labels and annotations filled in. promtool
checks that the real rules, with their real `for`, fire exactly so. `python -m
tests.support.rule_captures` gathers a run's cases into tests/deploy/rules_test_captured.yml.
"""

import asyncio
import math
import re
import shutil
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import yaml

from tests.deploy.dashboard_metrics import rule_metric_names
from tests.support.prometheus import RULES_FILE, Prometheus

REPO = Path(__file__).resolve().parents[2]
CASES_DIR = REPO / "var" / "ops-captures"
CAPTURED_TESTS = REPO / "tests" / "deploy" / "rules_test_captured.yml"
HEADER = (
    "# promtool unit tests from series a real Prometheus scraped off the running gateway in\n"
    "# the tests/ops scenarios (tests/support/rule_captures.py says how). Regenerate: run\n"
    "# `pytest tests/ops`, then `python -m tests.support.rule_captures`. Do not edit by hand.\n"
)
# Minutes the captured end state is held beyond the longest `for` of the scenario's alerts.
SETTLE_MINUTES = 5
# How long after a second its samples are surely scraped and stored.
INGESTED_SECONDS = 2
_TEST_NAMESPACE = re.compile(r"^lgtest-[0-9a-f]+\.")
_DURATION = re.compile(r"^(\d+)([smh])$")
_TEMPLATE = re.compile(r"\{\{\s*(\$value|\$labels\.(\w+))\s*\}\}")


def deploy_rules() -> dict[str, dict[str, Any]]:
    """The deploy alerting rules by alert name."""
    groups = yaml.safe_load(RULES_FILE.read_text())["groups"]
    return {rule["alert"]: rule for group in groups for rule in group["rules"] if "alert" in rule}


def _for_minutes(rule: dict[str, Any]) -> int:
    match = _DURATION.match(rule.get("for", "0s"))
    assert match, rule["for"]
    seconds = int(match[1]) * {"s": 1, "m": 60, "h": 3600}[match[2]]
    return -(-seconds // 60)


def go_float(value: float) -> str:
    """A float as Go's `%v` writes it, which is how `{{ $value }}` shows in an annotation."""
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    exponent = math.floor(math.log10(abs(value))) if value else 0
    if -4 <= exponent < 21:
        text = repr(value)
        return text[:-2] if text.endswith(".0") else text
    mantissa, _, power = f"{value:e}".partition("e")
    mantissa = repr(float(mantissa)).removesuffix(".0")
    return f"{mantissa}e{power[0]}{power[1:].lstrip('0').rjust(2, '0')}"


def _annotation(template: str, labels: dict[str, str], value: float) -> str:
    """An annotation with `{{ $value }}` and `{{ $labels.x }}` filled in (no other template
    functions: a rule that needs them cannot be checked from a capture)."""

    def filled(match: re.Match[str]) -> str:
        return go_float(value) if match[2] is None else labels.get(match[2], "")

    text = _TEMPLATE.sub(filled, str(template))
    assert "{{" not in text, f"template functions are not rendered here: {template}"
    return text


class _Targets:
    """Label values that do not change from run to run: targets named `<job>-<n>`, queues
    under the broker's production prefix instead of the test run's namespace."""

    def __init__(self) -> None:
        self._names: dict[str, str] = {}

    def label(self, labels: dict[str, str]) -> dict[str, str]:
        if "queue" in labels:
            labels["queue"] = _TEST_NAMESPACE.sub("lanegate.", labels["queue"])
        if "instance" in labels:
            job = labels.get("job", "target")
            taken = sum(name.startswith(f"{job}-") for name in self._names.values())
            labels["instance"] = self._names.setdefault(labels["instance"], f"{job}-{taken + 1}")
        return labels


def _selector(labels: dict[str, str]) -> str:
    inner = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()) if k != "__name__")
    return f"{labels['__name__']}{{{inner}}}"


def _values(points: dict[int, str], steps: int, hold: int) -> str:
    """promtool's notation for one series over `steps` seconds: runs `vxN` (N more), `_xN` (N
    missing), `stale` where the series ended; a value at the end is held `hold` more steps."""
    runs: list[list[Any]] = []  # [value, count]
    for step in range(steps + 1):
        value = points.get(step, "_")
        if runs and runs[-1][0] == value:
            runs[-1][1] += 1
        else:
            runs.append([value, 1])
    if runs[-1][0] == "_":
        runs[-1] = ["stale", 1]  # its target went away: Prometheus marked the series stale
    else:
        runs[-1][1] += hold
    return " ".join(
        value if count == 1 else f"{value}x{count if value == '_' else count - 1}"
        for value, count in runs
    )


async def captured_case(
    prometheus: Prometheus,
    scenario: str,
    since: float,
    fire: Sequence[str],
    quiet: Sequence[str] = (),
) -> dict[str, Any]:
    """The scenario as one promtool test: the rules' series since `since`, the alerts of
    `fire` expected as their expressions stand at the end, those of `quiet` expected silent."""
    rules = deploy_rules()
    # The end is after the alerts were seen firing; wait until all it holds is stored.
    end = float(math.ceil(time.time()))
    await asyncio.sleep(end + INGESTED_SECONDS - time.time())
    steps = int(end - since)
    start = end - steps
    targets = _Targets()
    series = []
    for metric in sorted(rule_metric_names()):
        for found in await prometheus.query_range(f'{{__name__="{metric}"}}', start, end):
            labels = targets.label(dict(found["metric"]))
            points = {round(float(t) - start): v for t, v in found["values"]}
            series.append((_selector(labels), points))
    hold = max(_for_minutes(rules[alert]) for alert in [*fire, *quiet]) + SETTLE_MINUTES
    at = f"{steps + hold}m"
    tests = []
    for alert in fire:
        rule = rules[alert]
        samples = await prometheus.query(rule["expr"], at=end)
        assert samples, f"{alert}'s expression holds nothing at the end of {scenario}"
        expected = []
        for sample in samples:
            labels = targets.label(dict(sample["metric"])) | rule.get("labels", {})
            labels.pop("__name__", None)  # an alert carries the rule's name instead
            value = float(sample["value"][1])
            annotations = {
                name: _annotation(text, labels, value)
                for name, text in rule.get("annotations", {}).items()
            }
            expected.append({"exp_labels": labels, "exp_annotations": annotations})
        tests.append({"eval_time": at, "alertname": alert, "exp_alerts": expected})
    tests += [{"eval_time": at, "alertname": alert, "exp_alerts": []} for alert in quiet]
    return {
        "name": scenario,
        "interval": "1m",
        "input_series": [
            {"series": selector, "values": _values(points, steps, hold)}
            for selector, points in sorted(series)
        ],
        "alert_rule_test": tests,
    }


def unit_tests(cases: Sequence[dict[str, Any]], rules_file: str) -> dict[str, Any]:
    """A promtool unit-test file of `cases` against `rules_file`."""
    return {"rule_files": [rules_file], "evaluation_interval": "1m", "tests": list(cases)}


def promtool_failure(case: dict[str, Any], cases_dir: Path = CASES_DIR) -> str:
    """Keep the case in `cases_dir` and run promtool on it against the deploy rules: what
    promtool says when it fails, else ''."""
    cases_dir.mkdir(parents=True, exist_ok=True)
    path = cases_dir / f"{case['name']}.yml"
    path.write_text(dump(unit_tests([case], str(RULES_FILE.resolve()))))
    executable = shutil.which("promtool")
    assert executable, "promtool not found: `make tools` installs Debian's prometheus package"
    result = subprocess.run(
        [executable, "test", "rules", str(path)], capture_output=True, text=True, timeout=120
    )
    return "" if result.returncode == 0 else result.stdout + result.stderr


def dump(document: dict[str, Any]) -> str:
    return yaml.safe_dump(document, sort_keys=False, width=200, allow_unicode=True)


def gathered(cases_dir: Path = CASES_DIR) -> str:
    """The cases a tests/ops run kept, ordered by scenario, as one unit-test file beside the
    other promtool tests in tests/deploy."""
    cases = []
    for path in sorted(cases_dir.glob("*.yml")):
        cases.extend(yaml.safe_load(path.read_text())["tests"])
    assert cases, f"no captured cases in {cases_dir}: run `pytest tests/ops` first"
    return HEADER + dump(unit_tests(cases, "../../deploy/prometheus/rules.yml"))


if __name__ == "__main__":
    CAPTURED_TESTS.write_text(gathered())
    print(f"wrote {CAPTURED_TESTS.relative_to(REPO)}")
