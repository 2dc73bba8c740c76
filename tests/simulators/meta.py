"""A Meta Graph API simulator: WhatsApp Cloud API sends, errors on demand, signed callbacks.

Every `POST /{version}/{phone-number-id}/messages` body is checked against
the `Message` schema of Meta's OpenAPI file; a body that does not conform is
answered with Meta's error 100 and recorded in `invalid`. Accepted messages
get a `wamid`, then signed status callbacks (sent, delivered, read) go to the
number's callback URL, each checked against the file's `WebhookPayload`.

A number's status (`GET /{version}/{phone-number-id}`) answers with the
fields asked for, and refuses a wrong token as Meta does (190, subcode 463);
`hold_number_checks` keeps a number's answers back until released.

Message templates: `GET /{version}/{waba-id}/message_templates` lists what a
test set with `set_templates`, `template_page_size` at a time with Meta's
`paging.cursors.after` / `paging.next`; a wrong token gets error 190, and a
WABA given `throttle_templates` gets error 4 or 80007 until it is lifted;
`template_delay` slows a WABA's pages down, and a WABA given `endless_templates`
lists fresh templates on every page with a next page, for ever.
`template_status` posts a signed `message_template_status_update` callback.
"""

import asyncio
import base64
import json
import secrets
import threading
import time
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from lanegate.providers.cloud_api import hub_signature
from tests.simulators.meta_schema import problems
from tests.simulators.server import ThreadedServer

PHONE_DEFAULT_FIELDS = ("display_phone_number", "verified_name", "quality_rating")
PHONE_FIELDS = {"id", *PHONE_DEFAULT_FIELDS, "name_status", "code_verification_status"}


@dataclass
class Number:
    """A business phone number the simulator knows."""

    phone_number_id: str
    waba_id: str
    access_token: str
    app_secret: str
    display_phone_number: str
    callback_url: str = ""


@dataclass
class Failure:
    """The answer the next send gets instead of success."""

    code: int
    http_status: int
    asynchronous: bool  # accepted with a wamid, then a `failed` status callback


@dataclass
class MetaSimulator:
    """The simulator's state; `start()` serves it on 127.0.0.1."""

    receipt_delay: float = 0.05
    numbers: dict[str, Number] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[tuple[dict[str, Any], list[str]]] = field(default_factory=list)
    callbacks: list[tuple[str, int]] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    stalls: list[float] = field(default_factory=list)
    server: ThreadedServer | None = None
    template_page_size: int = 2
    templates: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    template_requests: list[tuple[str, str | None]] = field(default_factory=list)
    throttled: dict[str, int] = field(default_factory=dict)
    template_delay: dict[str, float] = field(default_factory=dict)
    endless: set[str] = field(default_factory=set)
    phone_requests: list[tuple[str, str | None]] = field(default_factory=list)
    phone_holds: dict[str, threading.Event] = field(default_factory=dict)

    def start(self) -> "MetaSimulator":
        app = web.Application()
        app.router.add_post("/{version}/{number}/messages", self._send)
        app.router.add_get("/{version}/{number}", self._phone_number)
        app.router.add_get("/{version}/{waba}/message_templates", self._templates)
        self.server = ThreadedServer(app)
        self.server.start()
        return self

    def stop(self) -> None:
        if self.server is not None:
            self.server.stop()

    @property
    def url(self) -> str:
        assert self.server is not None
        return self.server.url

    def add_number(self, callback_url: str) -> Number:
        """A new business number whose callbacks go to `callback_url`."""
        number = Number(
            phone_number_id=str(secrets.randbelow(10**15) + 10**14),
            waba_id=str(secrets.randbelow(10**15) + 10**14),
            access_token="EAAG" + secrets.token_urlsafe(24),
            app_secret=secrets.token_hex(16),
            display_phone_number="+1 555 01" + str(secrets.randbelow(10**5)).zfill(5),
            callback_url=callback_url,
        )
        self.numbers[number.phone_number_id] = number
        return number

    def stall_next(self, seconds: float) -> None:
        """Make the next send hang for `seconds`, then drop it unanswered (a lost request)."""
        self.stalls.append(seconds)

    def fail_next(self, code: int, *, http_status: int = 400, asynchronous: bool = False) -> None:
        """Make the next send fail with Meta error `code` (now, or later as a failed status)."""
        self.failures.append(Failure(code, http_status, asynchronous))

    def set_templates(self, number: Number, templates: list[dict[str, Any]]) -> None:
        """What Meta lists for the number's WABA from now on (each gets an id if it has none)."""
        for template in templates:
            template.setdefault("id", str(secrets.randbelow(10**15) + 10**14))
        self.templates[number.waba_id] = templates

    def throttle_templates(self, number: Number, code: int | None) -> None:
        """Answer the WABA's template requests with Meta error `code` (None lifts it)."""
        if code is None:
            self.throttled.pop(number.waba_id, None)
        else:
            self.throttled[number.waba_id] = code

    def endless_templates(self, number: Number, endless: bool = True) -> None:
        """Make the number's WABA page for ever (fresh templates on every page), or stop."""
        if endless:
            self.endless.add(number.waba_id)
        else:
            self.endless.discard(number.waba_id)

    def _templates_page(self, request: web.Request, waba_id: str) -> dict[str, Any]:
        after = request.query.get("after")
        start = int(base64.urlsafe_b64decode(after.encode()).decode()) if after else 0
        size = min(int(request.query.get("limit", "25")), self.template_page_size)
        templates = self.templates.get(waba_id, [])
        if waba_id in self.endless:
            templates = [
                {
                    "id": str(10**14 + i),
                    "name": f"endless_{i}",
                    "language": "en_US",
                    "status": "APPROVED",
                    "category": "UTILITY",
                    "components": [{"type": "BODY", "text": f"Page item {i}"}],
                }
                for i in range(start + size + 1)
            ]
        fields = set(request.query.get("fields", "id,name,status,language,category").split(","))
        data = []
        for template in templates[start : start + size]:
            item = {k: v for k, v in template.items() if k in fields and k != "quality_score"}
            if "quality_score" in fields:
                item["quality_score"] = {
                    "score": template.get("quality_score", "UNKNOWN"),
                    "date": int(time.time()),
                }
            data.append(item)
        body: dict[str, Any] = {"data": data}
        if data:
            end = start + len(data)
            cursor = {
                "before": base64.urlsafe_b64encode(str(start).encode()).decode(),
                "after": base64.urlsafe_b64encode(str(end).encode()).decode(),
            }
            body["paging"] = {"cursors": cursor}
            if end < len(templates):
                query = dict(request.query) | {"after": cursor["after"]}
                body["paging"]["next"] = str(request.url.with_query(query))
        return body

    async def _templates(self, request: web.Request) -> web.Response:
        waba_id = request.match_info["waba"]
        owner = next((n for n in self.numbers.values() if n.waba_id == waba_id), None)
        self.template_requests.append((waba_id, request.query.get("after")))
        await asyncio.sleep(self.template_delay.get(waba_id, 0))
        if not self._authorised(request, owner):
            return self._error(190, "Invalid OAuth access token - Cannot parse access token", 401)
        code = self.throttled.get(waba_id)
        if code == 4:
            return self._error(4, "(#4) Application request limit reached")
        if code is not None:
            return self._error(code, f"(#{code}) There have been too many calls to this account")
        return web.json_response(self._templates_page(request, waba_id))

    async def template_status(
        self, number: Number, template: dict[str, Any], event: str, reason: str = "NONE"
    ) -> int:
        """Meta changes a template's status and tells the number's callback URL; returns the
        gateway's answer status."""
        template["status"] = event
        value = {
            "event": event,
            "message_template_id": int(template["id"]),
            "message_template_name": template["name"],
            "message_template_language": template["language"],
            "reason": reason,
            "message_template_category": template.get("category", "UTILITY"),
        }
        # The file's `Change.field` enum has no template fields, so this shape follows Meta's
        # webhook reference instead of the file.
        payload = {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": number.waba_id,
                    "time": int(time.time()),
                    "changes": [{"value": value, "field": "message_template_status_update"}],
                }
            ],
        }
        assert self.server is not None
        status: int = await self.server.submit(self._post_raw(number, payload))
        return status

    def _authorised(self, request: web.Request, number: Number | None) -> bool:
        expected = f"Bearer {number.access_token}" if number else None
        return expected is not None and request.headers.get("Authorization") == expected

    @staticmethod
    def _error(
        code: int,
        message: str,
        status: int = 400,
        *,
        subcode: int | None = None,
        kind: str = "OAuthException",
    ) -> web.Response:
        error: dict[str, Any] = {
            "message": message,
            "type": kind,
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": message},
            "fbtrace_id": secrets.token_urlsafe(12),
        }
        if subcode is not None:
            error["error_subcode"] = subcode
        return web.json_response({"error": error}, status=status)

    def hold_number_checks(self, number: Number) -> threading.Event:
        """Keep the number's status requests unanswered until the returned event is set."""
        released = threading.Event()
        self.phone_holds[number.phone_number_id] = released
        return released

    async def _phone_number(self, request: web.Request) -> web.Response:
        """`GET /{version}/{phone-number-id}` as the file describes it: the default fields, or
        `id` and those asked for; 104 without a token, 190 (subcode 463) for a wrong one, 803
        for a number the token's business does not have, 100 for an unknown field."""
        phone_id = request.match_info["number"]
        self.phone_requests.append((phone_id, request.query.get("fields")))
        held = self.phone_holds.get(phone_id)
        if held is not None:
            await asyncio.to_thread(held.wait, 30)
        token = request.headers.get("Authorization", "")
        if not token.startswith("Bearer ") or token == "Bearer ":
            return self._error(104, "An access token is required to request this resource", 401)
        number = self.numbers.get(phone_id)
        owner = next(
            (n for n in self.numbers.values() if token == f"Bearer {n.access_token}"), None
        )
        if owner is None:
            return self._error(190, "Invalid OAuth access token", 401, subcode=463)
        if number is None or number.waba_id != owner.waba_id:
            return self._error(803, "Phone number not found", 404, kind="GraphMethodException")
        asked = request.query.get("fields")
        wanted = asked.split(",") if asked else list(PHONE_DEFAULT_FIELDS)
        unknown = [name for name in wanted if name not in PHONE_FIELDS]
        if unknown:
            return self._error(
                100,
                "Invalid field requested. Available fields: name_status, code_verification_status",
            )
        info = {
            "id": number.phone_number_id,
            "display_phone_number": number.display_phone_number,
            "verified_name": "Simulated Business",
            "quality_rating": "GREEN",
            "name_status": "APPROVED",
            "code_verification_status": "VERIFIED",
        }
        return web.json_response({"id": number.phone_number_id} | {k: info[k] for k in wanted})

    async def _send(self, request: web.Request) -> web.Response:
        number = self.numbers.get(request.match_info["number"])
        if not self._authorised(request, number):
            return self._error(190, "Invalid OAuth access token.", 401)
        assert number is not None
        body = await request.json()
        found = problems("Message", body)
        if found:
            self.invalid.append((body, found))
            return self._error(100, "(#100) Invalid parameter: " + "; ".join(found[:3]))
        if self.stalls:
            await asyncio.sleep(self.stalls.pop(0))
            return self._error(2, "Service temporarily unavailable", 503)
        failure = self.failures.pop(0) if self.failures else None
        if failure is not None and not failure.asynchronous:
            return self._error(failure.code, f"Simulated error {failure.code}", failure.http_status)
        wamid = "wamid." + base64.b64encode(secrets.token_bytes(24)).decode()
        self.sent.append({"wamid": wamid, "number": number.phone_number_id, **body})
        statuses = ["failed"] if failure else ["sent", "delivered", "read"]
        assert self.server is not None
        self.server.spawn(self._receipts(number, wamid, body, statuses, failure))
        return web.json_response(
            {
                "messaging_product": "whatsapp",
                "contacts": [{"input": body["to"], "wa_id": body["to"]}],
                "messages": [{"id": wamid, "message_status": "accepted"}],
            }
        )

    async def _receipts(
        self,
        number: Number,
        wamid: str,
        body: dict[str, Any],
        statuses: list[str],
        failure: Failure | None,
    ) -> None:
        for status in statuses:
            await asyncio.sleep(self.receipt_delay)
            item: dict[str, Any] = {
                "id": wamid,
                "status": status,
                "timestamp": str(int(time.time())),
                "recipient_id": body["to"],
                "biz_opaque_callback_data": body.get("biz_opaque_callback_data", ""),
            }
            if failure is not None:
                item["errors"] = [
                    {
                        "code": failure.code,
                        "title": f"Simulated error {failure.code}",
                        "message": f"Simulated error {failure.code}",
                        "error_data": {"details": "simulated"},
                    }
                ]
            await self._post(number, {"statuses": [item]})

    def _payload(self, number: Number, value: dict[str, Any]) -> dict[str, Any]:
        metadata = {
            "display_phone_number": number.display_phone_number,
            "phone_number_id": number.phone_number_id,
        }
        return {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": number.waba_id,
                    "changes": [
                        {
                            "value": {"messaging_product": "whatsapp", "metadata": metadata}
                            | value,
                            "field": "messages",
                        }
                    ],
                }
            ],
        }

    async def _post(
        self, number: Number, value: dict[str, Any], *, secret: str | None = None
    ) -> int:
        payload = self._payload(number, value)
        if "statuses" in value:
            # The file's inbound-message schemas point at the send schemas (a name clash in
            # it), so only status callbacks can be checked against it.
            found = problems("WebhookPayload", payload)
            assert not found, found  # the simulator itself must speak Meta's shape
        return await self._post_raw(number, payload, secret=secret)

    async def _post_raw(
        self, number: Number, payload: dict[str, Any], *, secret: str | None = None
    ) -> int:
        raw = json.dumps(payload).encode()
        signature = hub_signature(raw, secret if secret is not None else number.app_secret)
        assert self.server is not None and self.server.http is not None
        async with self.server.http.post(
            number.callback_url,
            data=raw,
            headers={"Content-Type": "application/json", "X-Hub-Signature-256": signature},
        ) as response:
            self.callbacks.append((number.callback_url, response.status))
            return response.status

    async def inbound(
        self,
        number: Number,
        sender: str,
        message: dict[str, Any],
        *,
        name: str = "Ana",
        secret: str | None = None,
    ) -> int:
        """Somebody writes to `number`; `message` holds `type` and its object. Returns the status
        the gateway answered the callback with (`secret` forges the signature)."""
        item = {
            "from": sender,
            "id": "wamid." + base64.b64encode(secrets.token_bytes(24)).decode(),
            "timestamp": str(int(time.time())),
            **message,
        }
        value = {"contacts": [{"profile": {"name": name}, "wa_id": sender}], "messages": [item]}
        assert self.server is not None
        status: int = await self.server.submit(self._post(number, value, secret=secret))
        return status
