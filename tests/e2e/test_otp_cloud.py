"""One-time codes on a cloud_api instance: an AUTHENTICATION template against the Meta simulator."""

import re
from typing import Any

import pytest

from tests.e2e.test_cloud_api import CONTACT
from tests.e2e.test_templates import meta_template, synced
from tests.simulators.meta import MetaSimulator
from tests.support.gateway import Gateway
from tests.support.receiver import Receiver, event_named

pytestmark = pytest.mark.e2e


def authentication(name: str, **extra: Any) -> dict[str, Any]:
    """An AUTHENTICATION template with Meta's copy-code button."""
    return (
        meta_template(
            name,
            "{{1}} is your verification code.",
            category="AUTHENTICATION",
            components=[
                {"type": "BODY", "text": "{{1}} is your verification code."},
                {"type": "BUTTONS", "buttons": [{"type": "OTP", "otp_type": "COPY_CODE"}]},
            ],
        )
        | extra
    )


async def otp_send(gateway: Gateway, key: str, name: str, **fields: Any) -> tuple[int, Any]:
    return await gateway.call(
        "POST", "/otp/send", key=key, json={"instanceName": name, "to": CONTACT} | fields
    )


async def test_the_code_goes_as_the_body_and_copy_code_button_parameters(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, _, _ = await synced(gateway, meta, receiver, [authentication("login_code")])
    status, sent = await otp_send(
        gateway, key, name, template={"name": "login_code", "language": "pt_BR"}
    )
    assert 201 == status, sent
    await receiver.wait_for(event_named("message.status", id=sent["messageId"], status="sent"))
    [call] = [s for s in meta.sent if s.get("biz_opaque_callback_data") == sent["messageId"]]
    body, button = call["template"]["components"]
    code = body["parameters"][0]["text"]
    assert re.fullmatch(r"\d{6}", code)
    assert ("button", "url", [{"type": "text", "text": code}]) == (
        button["type"],
        button["sub_type"],
        button["parameters"],
    )
    assert [] == [found for payload, found in meta.invalid if payload.get("to") == CONTACT]
    status, message = await gateway.call("GET", f"/message/{sent['messageId']}", key=key)
    assert 200 == status and code not in str(message)
    assert (
        200
        == (
            await gateway.call(
                "POST", "/otp/verify", key=key, json={"id": sent["id"], "code": code}
            )
        )[0]
    )

    status, listed = await gateway.call("GET", "/otp/templates", key=key)
    assert (200, [("login_code", "APPROVED", "AUTHENTICATION")]) == (
        status,
        [(t["name"], t["status"], t["category"]) for t in listed["data"]],
    )


@pytest.mark.parametrize(
    ("template", "said"),
    [
        (meta_template("utility_code", "{{1}} is your code."), "category"),
        (authentication("pending_code", status="PENDING"), "PENDING"),
    ],
)
async def test_a_template_that_cannot_carry_codes_is_400(
    gateway: Gateway,
    meta: MetaSimulator,
    receiver: Receiver,
    template: dict[str, Any],
    said: str,
) -> None:
    name, key, _, _ = await synced(gateway, meta, receiver, [template])
    status, body = await otp_send(
        gateway, key, name, template={"name": template["name"], "language": "pt_BR"}
    )
    assert (400, ["template", "name"]) == (status, body["issues"][0]["path"])
    assert said in body["issues"][0]["message"]


async def test_a_cloud_api_code_without_a_template_is_400(
    gateway: Gateway, meta: MetaSimulator, receiver: Receiver
) -> None:
    name, key, _, _ = await synced(gateway, meta, receiver, [authentication("any_code")])
    status, body = await otp_send(gateway, key, name)
    assert (400, ["template"]) == (status, body["issues"][0]["path"])
