"""How a code reaches the phone or the mailbox: the masked content of its message (a text, a
mail with a subject on smtp, or an AUTHENTICATION template on cloud_api) and queuing it on the
urgent lane."""

from typing import Any

from aiohttp import web

from ingress_api.accept.accepting import MessageToAccept, accept_one
from ingress_api.auth import Caller
from ingress_api.countries import send_context
from ingress_api.schemas.messages import SendCommon
from ingress_api.schemas.otp import OtpSend
from lanegate import otp
from lanegate.errors import InvalidInput
from lanegate.providers.capabilities import channel_of
from lanegate.service import KEYRING
from lanegate.store import Document, Store

DEFAULT_TEXT = f"Your verification code is {otp.PLACEHOLDER}. Do not share it with anyone."
DEFAULT_SUBJECT = "Your verification code"
AUTHENTICATION = "AUTHENTICATION"


async def carrier_of(store: Store, instance: Document, body: OtpSend) -> dict[str, Any]:
    """How the code goes: an AUTHENTICATION template on cloud_api, a mail on smtp, else a text
    (400 when the body does not fit the instance)."""
    email = channel_of(instance["provider"]) == "email"
    if body.subject is not None and not email:
        raise InvalidInput([(["subject"], "subject is for codes sent by e-mail")])
    if instance["provider"] != "cloud_api":
        if body.template is not None:
            raise InvalidInput(
                [(["template"], f"A {instance['provider']} instance sends codes as text")]
            )
        text = {"kind": "text", "text": otp.masked_text(body.text or DEFAULT_TEXT)}
        if email:
            return text | {"subject": otp.masked_text(body.subject or DEFAULT_SUBJECT)}
        return text
    if body.template is None:
        raise InvalidInput(
            [(["template"], "A cloud_api instance sends codes with an AUTHENTICATION template")]
        )
    template = await store.templates.find_one(
        {
            "tenantId": instance["tenantId"],
            "instanceName": instance["_id"],
            "name": body.template.name,
            "language": body.template.language,
            "deleted": False,
        }
    )
    if template is None:
        raise InvalidInput(
            [
                (
                    ["template", "name"],
                    f"No template {body.template.name} in "
                    f"{body.template.language} on {instance['_id']}: sync templates first",
                )
            ]
        )
    if template.get("category") != AUTHENTICATION:
        raise InvalidInput(
            [
                (
                    ["template", "name"],
                    f"Template {template['name']} is of category "
                    f"{template.get('category')}, not {AUTHENTICATION}",
                )
            ]
        )
    if template["status"] != "APPROVED":
        raise InvalidInput(
            [
                (
                    ["template", "name"],
                    f"Template {template['name']} is {template['status']}; "
                    "only APPROVED templates can be sent",
                )
            ]
        )
    return {
        "kind": "template",
        "templateId": template["_id"],
        "name": template["name"],
        "language": template["language"],
        # Meta's authentication templates take the code as the body parameter and again as
        # the copy-code button's URL parameter.
        "components": [
            {"type": "body", "parameters": [{"type": "text", "text": otp.MASK}]},
            {
                "type": "button",
                "sub_type": "url",
                "index": "0",
                "parameters": [{"type": "text", "text": otp.MASK}],
            },
        ],
        "variables": [otp.MASK],
    }


async def send_code(request: web.Request, caller: Caller, record: Document, code: str) -> str:
    """Queue the message carrying `code` (sealed in it, masked everywhere it shows) on the
    urgent lane at the top priority; its id."""
    carrier = dict(record["carrier"])
    kind = carrier.pop("kind")
    carrier[otp.SEALED_CODE] = request.app[KEYRING].encrypt(code)
    body = SendCommon.model_validate(
        {
            "instanceName": record["instanceName"],
            "to": record["to"],
            "lane": "urgent",
            "priority": 10,
            "messageType": "TRANSACTIONAL",
            "validUntil": record["expiresAt"],
        },
        context=await send_context(request, caller, record["instanceName"]),
    )
    answer, _ = await accept_one(request, caller, MessageToAccept(body, kind, carrier))
    return str(answer["id"])
