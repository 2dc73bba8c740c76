"""A WAHA simulator: sessions, QR and pairing codes, sends, errors on demand, signed callbacks.

Requests are checked against the WAHA API's shapes (required fields, no
unknown fields, `<number>@c.us` chat ids, the `X-Api-Key` header); a
non-conforming request gets 400 and is recorded in `invalid`. Callbacks
(`message`, `message.ack`, `session.status`) are signed as WAHA signs them:
`X-Webhook-Hmac` = hex HMAC-SHA512 of the raw body with the session's key.
"""

import asyncio
import base64
import json
import re
import secrets
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from lanegate.providers.sandbox import qr_png
from lanegate.providers.waha import waha_signature
from tests.simulators.server import ThreadedServer

CHAT_ID = re.compile(r"^[0-9]{8,15}@c\.us$")
SEND_FIELDS = {
    "/api/sendText": ({"session", "chatId", "text"}, set()),
    "/api/sendImage": ({"session", "chatId", "file"}, {"caption"}),
    "/api/sendFile": ({"session", "chatId", "file"}, {"caption"}),
    "/api/sendVoice": ({"session", "chatId", "file"}, set()),
    "/api/sendVideo": ({"session", "chatId", "file"}, {"caption"}),
    "/api/sendLocation": ({"session", "chatId", "latitude", "longitude"}, {"title"}),
}


@dataclass
class SimSession:
    """One WhatsApp Web session the simulator runs."""

    name: str
    status: str = "STOPPED"
    webhook_url: str = ""
    hmac_key: str = ""
    events: list[str] = field(default_factory=list)
    me: str | None = None
    timelock_ends: datetime | None = None


@dataclass
class WahaSimulator:
    """The simulator's state; `start()` serves it on 127.0.0.1."""

    api_key: str = field(default_factory=lambda: secrets.token_urlsafe(16))
    ack_delay: float = 0.05
    sessions: dict[str, SimSession] = field(default_factory=dict)
    sent: list[dict[str, Any]] = field(default_factory=list)
    invalid: list[tuple[str, str]] = field(default_factory=list)
    failures: list[tuple[int, str]] = field(default_factory=list)
    server: ThreadedServer | None = None

    def start(self) -> "WahaSimulator":
        app = web.Application(middlewares=[self._auth])
        app.router.add_post("/api/sessions", self._create)
        app.router.add_put("/api/sessions/{session}", self._update)
        app.router.add_get("/api/sessions/{session}", self._get)
        app.router.add_post("/api/sessions/{session}/{action:start|stop|logout}", self._action)
        app.router.add_get("/api/{session}/auth/qr", self._qr)
        app.router.add_post("/api/{session}/auth/request-code", self._request_code)
        for path in SEND_FIELDS:
            app.router.add_post(path, self._send)
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

    def fail_next(self, status: int, message: str) -> None:
        """Make the next send answer `status` with WAHA's exception body around `message`."""
        self.failures.append((status, message))

    def timelock(self, session: str, seconds: float) -> None:
        """WhatsApp puts the number under a reach-out timelock: cold sends answer error 463."""
        self.sessions[session].timelock_ends = datetime.now(UTC) + timedelta(seconds=seconds)

    @web.middleware
    async def _auth(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if request.headers.get("X-Api-Key") != self.api_key:
            return web.json_response({"message": "Unauthorized", "statusCode": 401}, status=401)
        response: web.StreamResponse = await handler(request)
        return response

    def _bad(self, where: str, why: str) -> web.Response:
        self.invalid.append((where, why))
        return web.json_response({"statusCode": 400, "message": [why]}, status=400)

    def _info(self, session: SimSession) -> dict[str, Any]:
        me: dict[str, Any] | None = None
        if session.me:
            me = {"id": f"{session.me}@c.us", "pushName": "Simulated"}
            if session.timelock_ends and session.timelock_ends > datetime.now(UTC):
                me["reachoutTimelock"] = {
                    "isActive": True,
                    "timeEnforcementEnds": session.timelock_ends.isoformat(),
                }
        return {"name": session.name, "status": session.status, "me": me, "engine": {}}

    def _configure(self, session: SimSession, body: dict[str, Any]) -> str | None:
        webhooks = (body.get("config") or {}).get("webhooks") or []
        for hook in webhooks:
            if not isinstance(hook.get("url"), str) or not isinstance(hook.get("events"), list):
                return "config.webhooks[].url and events are required"
            session.webhook_url, session.events = hook["url"], hook["events"]
            session.hmac_key = (hook.get("hmac") or {}).get("key", "")
        return None

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        name = body.get("name")
        if not isinstance(name, str):
            return self._bad("/api/sessions", "name must be a string")
        if name in self.sessions:
            return web.json_response({"message": "Session already exists"}, status=422)
        session = self.sessions[name] = SimSession(name)
        problem = self._configure(session, body)
        if problem:
            return self._bad("/api/sessions", problem)
        if body.get("start"):
            await self._boot(session)
        return web.json_response(self._info(session), status=201)

    async def _update(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["session"])
        if session is None:
            return web.json_response({"message": "Session not found"}, status=404)
        problem = self._configure(session, await request.json())
        return (
            self._bad("PUT session", problem) if problem else web.json_response(self._info(session))
        )

    async def _get(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["session"])
        if session is None:
            return web.json_response({"message": "Session not found"}, status=404)
        return web.json_response(self._info(session))

    async def _action(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["session"])
        if session is None:
            return web.json_response({"message": "Session not found"}, status=404)
        action = request.match_info["action"]
        if action == "start":
            await self._boot(session)
        else:
            session.status, session.me = "STOPPED", None
            await self._status(session)
        return web.json_response(self._info(session), status=201)

    async def _boot(self, session: SimSession) -> None:
        session.status = "STARTING"
        await self._status(session)
        session.status = "WORKING" if session.me else "SCAN_QR_CODE"
        await self._status(session)

    async def _qr(self, request: web.Request) -> web.Response:
        session = self.sessions.get(request.match_info["session"])
        if session is None or session.status != "SCAN_QR_CODE":
            return web.json_response({"message": "Session is not waiting for a QR"}, status=422)
        png = qr_png(f"2@{secrets.token_urlsafe(24)},{session.name}")
        return web.json_response({"mimetype": "image/png", "data": base64.b64encode(png).decode()})

    async def _request_code(self, request: web.Request) -> web.Response:
        body = await request.json()
        if set(body) - {"phoneNumber", "method"} or not re.match(
            r"^[0-9]{8,15}$", str(body.get("phoneNumber"))
        ):
            return self._bad("request-code", "phoneNumber must be digits only")
        code = secrets.token_hex(4).upper()
        return web.json_response({"code": f"{code[:4]}-{code[4:]}"})

    async def scan(self, session_name: str, phone_number: str) -> None:
        """The phone scans the QR: the session goes WORKING as `phone_number`."""
        session = self.sessions[session_name]
        session.me, session.status = phone_number, "WORKING"
        assert self.server is not None
        await self.server.submit(self._status(session))

    async def _send(self, request: web.Request) -> web.Response:
        body = await request.json()
        required, optional = SEND_FIELDS[request.path]
        missing, unknown = required - set(body), set(body) - required - optional
        if missing or unknown:
            return self._bad(request.path, f"missing {sorted(missing)}, unknown {sorted(unknown)}")
        if not CHAT_ID.match(str(body["chatId"])):
            return self._bad(request.path, "chatId must be <number>@c.us")
        if "file" in body and (problem := _file_problem(body["file"])):
            return self._bad(request.path, problem)
        session = self.sessions.get(body["session"])
        if session is None or session.status != "WORKING":
            return web.json_response({"message": "Session status is not WORKING"}, status=422)
        failure = self.failures.pop(0) if self.failures else None
        lock = session.timelock_ends and session.timelock_ends > datetime.now(UTC)
        if lock and failure is None:
            failure = (500, "2 UNKNOWN: server returned error 463")
        if failure is not None:
            status, text = failure
            exception = {"message": text, "code": 2, "details": text, "name": "Error"}
            return web.json_response(
                {"statusCode": status, "timestamp": "now", "exception": exception}, status=status
            )
        message_id = f"true_{body['chatId']}_{secrets.token_hex(10).upper()}"
        self.sent.append({"path": request.path, "id": message_id, **body})
        assert self.server is not None
        self.server.spawn(self._acks(session, message_id, body["chatId"]))
        return web.json_response({"id": message_id, "timestamp": int(time.time())}, status=201)

    async def _acks(self, session: SimSession, message_id: str, chat: str) -> None:
        for ack, name in ((1, "SERVER"), (2, "DEVICE"), (3, "READ")):
            await asyncio.sleep(self.ack_delay)
            payload = {"id": message_id, "from": chat, "fromMe": True, "ack": ack, "ackName": name}
            await self._post(session, "message.ack", payload)

    async def _status(self, session: SimSession) -> None:
        payload: dict[str, Any] = {"status": session.status}
        if session.me:
            payload["me"] = {"id": f"{session.me}@c.us"}
        await self._post(session, "session.status", payload)

    async def _post(
        self, session: SimSession, event: str, payload: dict[str, Any], key: str | None = None
    ) -> int:
        if not session.webhook_url or event not in session.events:
            return 0
        body = {
            "id": "evt_" + secrets.token_hex(12),
            "timestamp": int(time.time() * 1000),
            "event": event,
            "session": session.name,
            "payload": payload,
            "engine": "WEBJS",
        }
        raw = json.dumps(body).encode()
        headers = {
            "Content-Type": "application/json",
            "X-Webhook-Hmac": waha_signature(raw, key if key is not None else session.hmac_key),
            "X-Webhook-Hmac-Algorithm": "sha512",
        }
        assert self.server is not None and self.server.http is not None
        async with self.server.http.post(session.webhook_url, data=raw, headers=headers) as r:
            return r.status

    async def inbound(
        self,
        session_name: str,
        sender: str,
        text: str,
        *,
        key: str | None = None,
        message_id: str | None = None,
    ) -> int:
        """Somebody writes to the session's number (WAHA posts a message again with its
        `message_id`); returns the gateway's answer status."""
        payload = {
            "id": message_id or f"false_{sender}@c.us_{secrets.token_hex(10).upper()}",
            "timestamp": int(time.time()),
            "from": f"{sender}@c.us",
            "fromMe": False,
            "body": text,
            "hasMedia": False,
            "_data": {"notifyName": "Bruno"},
        }
        assert self.server is not None
        status: int = await self.server.submit(
            self._post(self.sessions[session_name], "message", payload, key)
        )
        return status


def _file_problem(file: Any) -> str | None:
    """What is wrong with a `file` object: WAHA takes a `url`, or `data` (base64) and a
    `mimetype`."""
    if not isinstance(file, dict):
        return "file must be an object"
    if isinstance(file.get("url"), str):
        return None
    if not isinstance(file.get("data"), str) or not isinstance(file.get("mimetype"), str):
        return "file needs url, or data (base64) with mimetype"
    try:
        base64.b64decode(file["data"], validate=True)
    except ValueError:
        return "file.data is not base64"
    return None
