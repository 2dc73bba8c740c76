"""The development stack takes every service's port from the settings, not a list of its own."""

import json
import os
import subprocess
import sys

from devtools.stack import SERVICES, configured_ports, port_variable
from lanegate.settings import Settings


def test_every_port_setting_belongs_to_one_service() -> None:
    ports = {name for name in Settings.model_fields if name.endswith("_port")}
    assert ports == set(SERVICES.values())
    assert len(SERVICES) == len(set(SERVICES.values()))


def test_each_port_variable_sets_its_services_port_in_the_settings() -> None:
    given = {service: 9100 + n for n, service in enumerate(SERVICES)}
    env = {k: v for k, v in os.environ.items() if not k.startswith("LANEGATE_")}
    env |= {port_variable(service): str(port) for service, port in given.items()}
    read = subprocess.run(
        [
            sys.executable,
            "-c",
            "from lanegate.settings import Settings; print(Settings().model_dump_json())",
        ],
        env=env,
        capture_output=True,
        check=True,
        text=True,
    )
    settings = json.loads(read.stdout)
    assert given == {service: settings[field] for service, field in SERVICES.items()}


def test_configured_ports_take_a_given_port_and_default_the_rest() -> None:
    ports = configured_ports({"LANEGATE_SENDER_PORT": "9123"})
    defaults = Settings.model_construct()
    assert {
        "ingress_api": defaults.ingress_port,
        "lane_scheduler": defaults.scheduler_port,
        "provider_sender": 9123,
        "webhook_dispatcher": defaults.dispatcher_port,
        "template_sync": defaults.template_sync_port,
    } == ports
