"""The `smtp` provider: e-mail through the tenant's SMTP relay, the `email` channel."""

import asyncio
import contextlib
import hashlib
import json
import re
import socket
import ssl
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from email.message import EmailMessage
from email.utils import format_datetime, formataddr

import aiosmtplib

from lanegate import spintax
from lanegate.attachments import Attachment
from lanegate.events import utcnow
from lanegate.outbound import TargetRefused, check_address
from lanegate.providers import NotConnected, ProviderError, Report, Sent, Session, Unsupported
from lanegate.providers.calls import Refused
from lanegate.providers.smtp_data import open_envelope, send_data
from lanegate.secrets import Keyring
from lanegate.store import Document

# Relays name the queue entry in their 250 answer ("2.0.0 Ok: queued as 4Bz1QX0Lk3z9").
QUEUE_ID = re.compile(r"queued as ([^\s;,]+)", re.IGNORECASE)
# How long an instance's session is kept open after a send for its next one: well under the
# five minutes RFC 5321 lets a relay wait on an idle client before it hangs up.
IDLE_SECONDS = 30.0
# A kept session that does not answer its NOOP this fast is replaced, not waited on.
NOOP_SECONDS = 5.0


def message_id_header(message_id: str, from_address: str) -> str:
    """The `Message-ID` of a gateway message, on the sender's domain so threads group by it."""
    return f"<{message_id}@{from_address.rpartition('@')[2]}>"


def queue_id(answer: str, fallback: str) -> str:
    """The relay's queue id in its 250 answer, else `fallback`."""
    found = QUEUE_ID.search(answer)
    return found.group(1).rstrip(".") if found else fallback


def smtp_error(code: int, text: str) -> ProviderError:
    """A relay's refusal by its reply code: 4xx is temporary (retried), 5xx final."""
    return ProviderError(str(code), text.strip() or f"SMTP {code}", retryable=400 <= code < 500)


def build_email(
    config: Mapping[str, str | None], message: Document, text: str | None
) -> EmailMessage:
    """The mail of a stored message: spun subject, text and html, and headers (its files are
    attached as the mail is sent, `smtp_data`)."""
    content = message["content"]
    from_address = str(config["fromAddress"])
    mail = EmailMessage()
    mail["Message-ID"] = message_id_header(message["_id"], from_address)
    mail["Date"] = format_datetime(utcnow())
    mail["From"] = formataddr((config.get("fromName") or "", from_address))
    mail["To"] = message["to"]
    subject = content.get("subject") or config.get("defaultSubject") or ""
    mail["Subject"] = spintax.spin(subject)
    if config.get("replyTo"):
        mail["Reply-To"] = str(config["replyTo"])
    if config.get("listUnsubscribe"):
        mail["List-Unsubscribe"] = f"<{config['listUnsubscribe']}>"
    mail.set_content(text or "")
    if content.get("html"):
        mail.add_alternative(spintax.spin(content["html"]), subtype="html")
    return mail


def _send_error(e: BaseException) -> ProviderError | None:
    """What a failed send is for the gateway, when aiosmtplib or the connection raised it."""
    if isinstance(e, aiosmtplib.SMTPResponseException):
        return smtp_error(e.code, e.message)
    if isinstance(e, (aiosmtplib.SMTPException, OSError, TimeoutError)):
        return ProviderError(
            "connection_failed", f"SMTP relay dropped the send: {e}", retryable=True
        )
    return None


def _hung_up(e: BaseException) -> bool:
    """Whether a kept session failed as relays end idle or used-up sessions: dropped, or a
    421 (closing; also their cap of mails per connection)."""
    if isinstance(e, aiosmtplib.SMTPResponseException):
        return e.code == 421
    return isinstance(e, (aiosmtplib.SMTPServerDisconnected, OSError, TimeoutError))


class Smtp:
    """The `smtp` provider: mail through the tenant's relay, on a session per instance that
    is kept open between sends (connecting, TLS and login cost several round trips each)."""

    name = "smtp"
    records_sends = False

    def __init__(
        self,
        *,
        keyring: Keyring,
        timeout: float,
        allow_private: bool,
        ca_file: str | None = None,
    ) -> None:
        self._keyring = keyring
        self._timeout = timeout
        self._allow_private = allow_private
        self._tls = ssl.create_default_context()
        if ca_file:
            self._tls.load_verify_locations(cafile=ca_file)
        # Instance id -> (its config's digest, the session, when it went idle).
        self._idle: dict[str, tuple[str, aiosmtplib.SMTP, float]] = {}

    async def _socket(self, host: str, port: int) -> socket.socket:
        """A connected socket to the relay, refused when it resolves to a non-public address
        (unless private targets are allowed); checked per address, so DNS cannot rebind."""
        loop = asyncio.get_running_loop()
        found = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        last: OSError | None = None
        for family, kind, proto, _, address in found:
            if not self._allow_private:
                check_address(host, str(address[0]))
            sock = socket.socket(family, kind, proto)
            sock.setblocking(False)
            try:
                await asyncio.wait_for(loop.sock_connect(sock, address), self._timeout)
                return sock
            except (OSError, TimeoutError) as e:
                sock.close()
                last = e if isinstance(e, OSError) else OSError(f"{host}:{port} timed out")
        raise last or OSError(f"{host} has no address")

    @contextlib.asynccontextmanager
    async def _session(self, config: Mapping[str, str | None]) -> AsyncIterator[aiosmtplib.SMTP]:
        """An authenticated SMTP session with the relay, ended after; raises ProviderError."""
        client = await self._connected(config)
        try:
            yield client
        finally:
            with contextlib.suppress(aiosmtplib.SMTPException, OSError, TimeoutError):
                await client.quit()
            client.close()

    async def _connected(self, config: Mapping[str, str | None]) -> aiosmtplib.SMTP:
        """A new authenticated SMTP session with the relay; raises ProviderError."""
        host, port, security = str(config["host"]), int(str(config["port"])), config["security"]
        try:
            sock = await self._socket(host, port)
            client = aiosmtplib.SMTP(
                hostname=host,
                sock=sock,
                use_tls=security == "tls",
                start_tls=security == "starttls",
                tls_context=self._tls,
                timeout=self._timeout,
            )
            try:
                await client.connect()
                if config.get("username"):
                    await client.login(str(config["username"]), str(config.get("password") or ""))
            except BaseException:
                client.close()
                sock.close()
                raise
        except TargetRefused as e:
            raise Refused("target_refused", f"SMTP relay {host} refused: {e}") from e
        except aiosmtplib.SMTPResponseException as e:
            raise smtp_error(e.code, e.message) from e
        except (aiosmtplib.SMTPException, OSError, TimeoutError) as e:
            raise ProviderError(
                "connection_failed", f"SMTP relay {host}:{port} unreachable: {e}", retryable=True
            ) from e
        return client

    async def _reused(self, instance_id: str, digest: str) -> aiosmtplib.SMTP | None:
        """The instance's idle session if it is recent, for the same config, and still
        answers a NOOP (relays hang up on idle clients); else None, the session closed."""
        held = self._idle.pop(instance_id, None)
        if held is None:
            return None
        held_digest, client, since = held
        if held_digest == digest and time.monotonic() - since < IDLE_SECONDS:
            try:
                await client.noop(timeout=min(NOOP_SECONDS, self._timeout))
                return client
            except (aiosmtplib.SMTPException, OSError, TimeoutError):
                pass
        client.close()
        return None

    def _keep(self, instance_id: str, digest: str, client: aiosmtplib.SMTP) -> None:
        """Hold a session that just sent for the instance's next send; close the sessions
        idle for too long (theirs and any other instance's)."""
        now = time.monotonic()
        for held_id, (_, held, since) in list(self._idle.items()):
            if held_id == instance_id or now - since >= IDLE_SECONDS:
                del self._idle[held_id]
                held.close()
        self._idle[instance_id] = (digest, client, now)

    async def send(
        self,
        instance: Document,
        message: Document,
        text: str | None,
        *,
        files: Sequence[Attachment] = (),
    ) -> Sent:
        if instance.get("state") != "open":
            raise NotConnected(instance["_id"])
        config = self._keyring.open_config(instance["providerConfig"])
        digest = hashlib.sha256(json.dumps(config, sort_keys=True).encode()).hexdigest()
        mail = build_email(config, message, text)
        sender, to = str(config["fromAddress"]), message["to"]
        kept = await self._reused(instance["_id"], digest)
        client = kept or await self._connected(config)
        try:
            try:
                envelope = await open_envelope(client, sender, to)
            except Exception as e:
                if kept is None or not _hung_up(e):
                    raise
                # Nothing of the mail went: once more on a new session.
                client.close()
                client = await self._connected(config)
                envelope = await open_envelope(client, sender, to)
            answer = await send_data(client, envelope, mail, files)
        except BaseException as e:
            client.close()  # a session a send failed on is not used again
            error = _send_error(e)
            if error is None:
                raise
            raise error from e
        self._keep(instance["_id"], digest, client)
        return Sent(queue_id(answer, str(mail["Message-ID"]).strip("<>")))

    async def find_sent(self, instance: Document, message_id: str) -> Sent | None:
        # A relay cannot be asked for a message by our id: an interrupted send stays unknown.
        return None

    async def start(self, instance: Document) -> Session:
        """Connect and authenticate (no mail sent): the relay takes this instance's mail."""
        config = self._keyring.open_config(instance["providerConfig"])
        async with self._session(config):
            pass
        return Session("open", provider_status="authenticated")

    async def status(self, instance: Document) -> Session:
        state = instance.get("state", "close")
        return Session(state if state in ("open", "close", "connecting") else "close")

    async def qr(self, instance: Document) -> bytes:
        raise Unsupported(self.name, "QR code")

    async def pairing_code(self, instance: Document, phone_number: str) -> str:
        raise Unsupported(self.name, "pairing code")

    async def logout(self, instance: Document) -> None:
        """Nothing is linked at a relay: the instance just stops sending."""

    def verify_callback(self, instance: Document, body: bytes, headers: Mapping[str, str]) -> bool:
        return False

    def parse_callback(self, instance: Document, body: bytes) -> list[Report]:
        return []

    async def close(self) -> None:
        """Close the sessions kept open between sends (no QUIT: a relay that went away must
        not hold up the process's stop)."""
        idle, self._idle = self._idle, {}
        for _, client, _ in idle.values():
            client.close()
