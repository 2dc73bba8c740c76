"""Messages: accept (store, then publish) and read back."""

import structlog
from aiohttp import web
from pydantic import ValidationError

from ingress_api.accept.accepting import (
    Issues,
    MessageToAccept,
    accept_many,
    accept_one,
    content_of,
)
from ingress_api.accept.quotas import refuse_over_bulk_size
from ingress_api.auth import authenticate
from ingress_api.countries import COUNTRY_NOT_KNOWN_YET, countries, send_context
from ingress_api.registry import API
from ingress_api.requests import (
    REPEATED_SEND_STATUS,
    SEND_ERRORS,
    channel_instances,
    message_view,
    pick_instance,
    read_json,
    read_object,
    validate,
)
from ingress_api.schemas.message_reads import MessageView
from ingress_api.schemas.messages import (
    Accepted,
    AudioMessage,
    BulkAccepted,
    BulkSend,
    ButtonsMessage,
    DocumentMessage,
    ImageMessage,
    ListMessage,
    LocationMessage,
    RoutedAccepted,
    RoutedAudio,
    RoutedButtons,
    RoutedCommon,
    RoutedDocument,
    RoutedImage,
    RoutedList,
    RoutedLocation,
    RoutedMessage,
    RoutedText,
    RoutedVideo,
    SendCommon,
    TextMessage,
    VideoMessage,
)
from lanegate.addresses import looks_like_email
from lanegate.errors import Forbidden, InvalidInput, NotFound
from lanegate.providers.capabilities import Channel
from lanegate.service import STORE

log = structlog.get_logger(__name__)


@API.post(
    "/message/text",
    summary="Queue a text message (spintax resolved at send time)",
    tag="messages",
    body=TextMessage,
    response=Accepted,
    status=202,
    errors=SEND_ERRORS,
    other_ok_statuses=REPEATED_SEND_STATUS,
    scope="messages:write",
)
async def send_text(request: web.Request) -> web.Response:
    """Queue a text message."""
    return await _send(request, TextMessage, "text")


async def _send(request: web.Request, model: type[SendCommon], kind: str) -> web.Response:
    caller = await authenticate(request)
    data = await read_object(request)
    body = validate(model, data, await send_context(request, caller, data.get("instanceName")))
    answer, status = await accept_one(
        request, caller, MessageToAccept(body, kind, content_of(kind, body))
    )
    return web.json_response(answer, status=status)


@API.post(
    "/message/image",
    summary="Queue an image by URL, with an optional caption (spintax)",
    tag="messages",
    body=ImageMessage,
    response=Accepted,
    status=202,
    errors=SEND_ERRORS,
    other_ok_statuses=REPEATED_SEND_STATUS,
    scope="messages:write",
)
async def send_image(request: web.Request) -> web.Response:
    return await _send(request, ImageMessage, "image")


@API.post(
    "/message/document",
    summary="Queue a document by URL, with an optional file name and caption (spintax)",
    tag="messages",
    body=DocumentMessage,
    response=Accepted,
    status=202,
    errors=SEND_ERRORS,
    other_ok_statuses=REPEATED_SEND_STATUS,
    scope="messages:write",
)
async def send_document(request: web.Request) -> web.Response:
    return await _send(request, DocumentMessage, "document")


@API.post(
    "/message/audio",
    summary="Queue an audio file by URL",
    tag="messages",
    body=AudioMessage,
    response=Accepted,
    status=202,
    errors=SEND_ERRORS,
    other_ok_statuses=REPEATED_SEND_STATUS,
    scope="messages:write",
)
async def send_audio(request: web.Request) -> web.Response:
    return await _send(request, AudioMessage, "audio")


@API.post(
    "/message/video",
    summary="Queue a video by URL, with an optional caption (spintax)",
    tag="messages",
    body=VideoMessage,
    response=Accepted,
    status=202,
    errors=SEND_ERRORS,
    other_ok_statuses=REPEATED_SEND_STATUS,
    scope="messages:write",
)
async def send_video(request: web.Request) -> web.Response:
    return await _send(request, VideoMessage, "video")


@API.post(
    "/message/location",
    summary="Queue a location pin",
    tag="messages",
    body=LocationMessage,
    response=Accepted,
    status=202,
    errors=SEND_ERRORS,
    other_ok_statuses=REPEATED_SEND_STATUS,
    scope="messages:write",
)
async def send_location(request: web.Request) -> web.Response:
    return await _send(request, LocationMessage, "location")


@API.post(
    "/message/buttons",
    summary="Queue up to three reply buttons (providers that support buttons; else 422)",
    tag="messages",
    body=ButtonsMessage,
    response=Accepted,
    status=202,
    errors=SEND_ERRORS,
    other_ok_statuses=REPEATED_SEND_STATUS,
    scope="messages:write",
)
async def send_buttons(request: web.Request) -> web.Response:
    return await _send(request, ButtonsMessage, "buttons")


@API.post(
    "/message/list",
    summary="Queue an interactive list (providers that support buttons; else 422)",
    tag="messages",
    body=ListMessage,
    response=Accepted,
    status=202,
    errors=SEND_ERRORS,
    other_ok_statuses=REPEATED_SEND_STATUS,
    scope="messages:write",
)
async def send_list(request: web.Request) -> web.Response:
    return await _send(request, ListMessage, "list")


DIRECT: dict[str, type[SendCommon]] = {
    "text": TextMessage,
    "image": ImageMessage,
    "document": DocumentMessage,
    "audio": AudioMessage,
    "video": VideoMessage,
    "location": LocationMessage,
    "buttons": ButtonsMessage,
    "list": ListMessage,
}


@API.post(
    "/message/bulk",
    summary="Queue up to 1,000 messages of any type, all or none",
    tag="messages",
    body=BulkSend,
    response=BulkAccepted,
    status=202,
    errors=(400, 401, 403, 409, 413, 503),
    scope="messages:write",
)
async def send_bulk(request: web.Request) -> web.Response:
    """Every item is checked first; one bad item gets a 400 naming each bad index and field."""
    caller = await authenticate(request)
    body = await read_json(request, BulkSend)
    refuse_over_bulk_size(caller, len(body.messages))
    items: list[tuple[int, MessageToAccept]] = []
    issues: Issues = []
    found = await countries(request, caller, (raw.get("instanceName") for raw in body.messages))
    for index, raw in enumerate(body.messages):
        kind = raw.get("type", "text")
        model = DIRECT.get(kind) if isinstance(kind, str) else None
        if model is None:
            issues.append((["messages", index, "type"], f"Must be one of: {', '.join(DIRECT)}"))
            continue
        try:
            item = model.model_validate(
                {k: v for k, v in raw.items() if k != "type"},
                context=found.context(raw.get("instanceName")),
            )
        except ValidationError as e:
            issues += [(["messages", index, *err["loc"]], err["msg"]) for err in e.errors()]
            continue
        items.append((index, MessageToAccept(item, kind, content_of(kind, item))))
    return web.json_response(await accept_many(request, caller, items, issues), status=202)


ROUTED: dict[str, tuple[type[RoutedCommon], type[SendCommon]]] = {
    "text": (RoutedText, TextMessage),
    "image": (RoutedImage, ImageMessage),
    "document": (RoutedDocument, DocumentMessage),
    "audio": (RoutedAudio, AudioMessage),
    "video": (RoutedVideo, VideoMessage),
    "location": (RoutedLocation, LocationMessage),
    "buttons": (RoutedButtons, ButtonsMessage),
    "list": (RoutedList, ListMessage),
}


@API.post(
    "/message/send",
    summary="Queue a message on one of a client's instances, picked by the gateway",
    tag="messages",
    body=RoutedMessage,
    response=RoutedAccepted,
    status=202,
    errors=SEND_ERRORS,
    other_ok_statuses=REPEATED_SEND_STATUS,
    scope="messages:write",
)
async def send_routed(request: web.Request) -> web.Response:
    """Pick the client's primary open instance, else the open one with the shortest queue, else
    (none open) the primary or the shortest queue, where the message waits for it to connect."""
    caller = await authenticate(request)
    data = await read_object(request)
    kind = data.get("type")
    if kind not in ROUTED:
        raise InvalidInput([(["type"], f"Must be one of: {', '.join(ROUTED)}")])
    routed_model, direct_model = ROUTED[kind]
    body = validate(routed_model, data, COUNTRY_NOT_KNOWN_YET)
    if body.tenantId != caller.tenant_id:
        raise Forbidden("tenantId must be your own tenant")
    channel: Channel = "email" if looks_like_email(body.to) else "whatsapp"
    instance = await pick_instance(
        request.app[STORE],
        channel_instances(caller, channel) | {"clientId": body.clientId},
        f"Client {body.clientId} has no {channel} instances",
    )
    fields = body.model_dump(exclude={"tenantId", "clientId", "type"})
    # The number as written is read in the picked instance's country, else the tenant's.
    fields |= {"to": data["to"], "instanceName": instance}
    direct = validate(direct_model, fields, await send_context(request, caller, instance))
    item = MessageToAccept(direct, kind, content_of(kind, direct))
    answer, status = await accept_one(request, caller, item)
    return web.json_response(answer | {"instanceName": instance}, status=status)


@API.get(
    "/message/{id}",
    summary="One of your messages and its status",
    tag="messages",
    response=MessageView,
    errors=(401, 404),
    scope="messages:read",
)
async def get_message(request: web.Request) -> web.Response:
    """One of the caller's messages; another tenant's id reads as not found."""
    caller = await authenticate(request)
    message = await request.app[STORE].messages.find_one(
        {"_id": request.match_info["id"], "tenantId": caller.tenant_id}
    )
    if message is None:
        raise NotFound("Message not found")
    return web.json_response(message_view(message))
