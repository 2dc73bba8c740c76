"""Template sends, whichever route takes them: the instance must have a WhatsApp Business
Account, and the template must be synced and APPROVED on that instance."""

from typing import Any

from aiohttp import web

from ingress_api.accept.accepting import MessageToAccept, accept_one
from ingress_api.auth import Caller
from ingress_api.requests import own_instance
from ingress_api.schemas.templates import TemplateMessage
from lanegate.errors import InvalidInput, WhatsAppNotConfigured
from lanegate.service import STORE
from lanegate.store import Document, Store
from lanegate.templates import TemplateMismatch, send_components


def require_waba(instance: Document) -> None:
    """422 unless the instance is a cloud_api one with a WhatsApp Business Account id and
    token, which templates need."""
    config = instance.get("providerConfig") or {}
    if instance["provider"] != "cloud_api" or not (
        config.get("wabaId") and config.get("accessToken")
    ):
        raise WhatsAppNotConfigured(
            f"{instance['_id']} is a {instance['provider']} instance: templates need a cloud_api "
            "instance with a WhatsApp Business Account id and access token"
        )


async def sendable_template(store: Store, instance: Document, body: TemplateMessage) -> Document:
    """The stored APPROVED template a send names, or a 400 saying why it cannot be used."""
    field = "templateId" if body.templateId is not None else "name"
    if body.templateId is not None:
        template = await store.templates.find_one(
            {"_id": body.templateId, "tenantId": instance["tenantId"]}
        )
        if template is None:
            raise InvalidInput(
                [(["templateId"], f"No template {body.templateId}: sync templates first")]
            )
        if template["instanceName"] != instance["_id"]:
            raise InvalidInput(
                [
                    (
                        ["templateId"],
                        f"Template {body.templateId} belongs to {template['instanceName']}, "
                        f"not {instance['_id']}",
                    )
                ]
            )
    else:
        template = await store.templates.find_one(
            {
                "tenantId": instance["tenantId"],
                "instanceName": instance["_id"],
                "name": body.name,
                "language": body.language,
                "deleted": False,
            }
        )
        if template is None:
            raise InvalidInput(
                [
                    (
                        ["name"],
                        f"No template {body.name} in {body.language} on {instance['_id']}: "
                        "sync templates first",
                    )
                ]
            )
    if template["status"] != "APPROVED":
        raise InvalidInput(
            [
                (
                    [field],
                    f"Template {template['name']} ({template['language']}) is "
                    f"{template['status']}; only APPROVED templates can be sent",
                )
            ]
        )
    return template


async def accept_template_send(
    request: web.Request,
    caller: Caller,
    body: TemplateMessage,
    template: Document,
    components: list[dict[str, Any]],
) -> tuple[dict[str, Any], int]:
    """Queue a send of `template` with Meta's `components` (checked against it already)."""
    content = {
        "templateId": template["_id"],
        "name": template["name"],
        "language": template["language"],
        "components": components,
        "variables": body.variables,
    }
    return await accept_one(request, caller, MessageToAccept(body, "template", content))


async def send_template_message(
    request: web.Request, caller: Caller, body: TemplateMessage
) -> tuple[dict[str, Any], int]:
    """Check the template and its variables, build Meta's components, then queue the message."""
    store = request.app[STORE]
    instance = await own_instance(store, caller, body.instanceName)
    require_waba(instance)
    template = await sendable_template(store, instance, body)
    try:
        components = send_components(
            template,
            body.variables,
            header_media=body.headerMedia.model_dump(mode="json") if body.headerMedia else None,
            buttons=[b.model_dump() for b in body.buttons],
        )
    except TemplateMismatch as e:
        raise InvalidInput(e.issues) from e
    return await accept_template_send(request, caller, body, template, components)
