"""Session requests from ingress (RPC) and verified provider callbacks, turned into actions."""

import base64
import time
from collections.abc import Sequence

import structlog

from lanegate.broker import Broker, Reject
from lanegate.events import ProviderCallback, ProviderRpc, TemplateStatusReported, utcnow
from lanegate.providers import (
    CallbackRefused,
    Inbound,
    Provider,
    ProviderError,
    Receipt,
    StateChange,
    TemplateUpdate,
    Unsupported,
)
from lanegate.providers.calls import record_refusal
from lanegate.providers.waha_callbacks import parse_envelope
from lanegate.signing import verify_event_seal
from lanegate.store import Document, Store
from provider_sender.callbacks import GatewayCallbacks
from provider_sender.metrics import PROVIDER_SECONDS

log = structlog.get_logger(__name__)


class Sessions:
    """Answers `provider.rpc` requests and applies `provider.callback` reports."""

    def __init__(
        self,
        store: Store,
        broker: Broker,
        providers: dict[str, Provider],
        callbacks: GatewayCallbacks,
        *,
        seal_keys: Sequence[bytes],
    ) -> None:
        self._store = store
        self._broker = broker
        self._providers = providers
        self._callbacks = callbacks
        # Empty without LANEGATE_SECRET_KEY (development): callback events are then unsealed.
        self._seal_keys = seal_keys

    async def _instance(self, name: str) -> tuple[Document, Provider]:
        instance = await self._store.instances.find_one({"_id": name})
        if instance is None:
            raise Reject(f"unknown instance {name}")
        provider = self._providers.get(instance["provider"])
        if provider is None:
            raise Reject(f"no {instance['provider']} provider")
        return instance, provider

    async def rpc(self, request: ProviderRpc) -> None:
        """Run one session operation and answer on the requester's reply queue."""
        if request.deadline < utcnow():
            log.info("rpc request expired before it was read", operation=request.operation)
            return
        try:
            instance, provider = await self._instance(request.instanceName)
            answer = await self._run(instance, provider, request)
        except Reject as e:
            answer = {"error": {"code": "unknown_instance", "message": e.reason}}
        except Unsupported as e:
            answer = {"error": {"code": e.code, "message": e.message, "unsupported": True}}
        except ProviderError as e:
            if request.operation == "start":
                # The caller may have stopped waiting: the instance itself tells why it is closed.
                await self._callbacks.refused(instance, e.code, e.message)
            answer = {"error": {"code": e.code, "message": e.message}}
            await record_refusal(self._store, request.instanceName, e)
        await self._broker.reply(request.replyTo, request.id, answer)

    async def _run(
        self, instance: Document, provider: Provider, request: ProviderRpc
    ) -> dict[str, object]:
        started = time.perf_counter()
        try:
            if request.operation == "qr":
                png = await provider.qr(instance)
                return {"qrcode": "data:image/png;base64," + base64.b64encode(png).decode()}
            if request.operation == "pairing_code":
                phone = str(request.payload["phoneNumber"])
                return {"pairingCode": await provider.pairing_code(instance, phone)}
            if request.operation == "logout":
                await provider.logout(instance)
                if instance.get("state") != "close":
                    await self._callbacks.state(instance, "close")
                return {"state": "close"}
            # What the provider answers is as of the request: a callback it sends meanwhile
            # is newer and wins.
            asked_at = utcnow()
            session = await (
                provider.start(instance)
                if request.operation == "start"
                else provider.status(instance)
            )
            if session.state != instance.get("state"):
                await self._callbacks.state(
                    instance,
                    session.state,
                    phone_number=session.phone_number,
                    reported_at=asked_at,
                )
            elif session.state == "open" and instance.get("lastError"):
                await self._store.instances.update_one(
                    {"_id": instance["_id"]}, {"$set": {"lastError": None}}
                )
            return {
                "state": session.state,
                "phoneNumber": session.phone_number or instance.get("phoneNumber"),
                "providerStatus": session.provider_status,
            }
        finally:
            PROVIDER_SECONDS.labels(instance["provider"], request.operation).observe(
                time.perf_counter() - started
            )

    async def callback(self, event: ProviderCallback) -> None:
        """Apply every report of a callback whose signature ingress has checked (its seal says
        ingress-api published it), on the instance and tenant it arrived for."""
        if self._seal_keys and not verify_event_seal(
            event.sealed_content(), self._seal_keys, event.seal
        ):
            log.warning("provider callback without ingress-api's seal", instance=event.instanceName)
            raise Reject("provider.callback not sealed by ingress-api")
        instance, provider = await self._instance(event.instanceName)
        if (instance["tenantId"], instance["provider"]) != (event.tenantId, event.provider):
            raise Reject(f"{event.instanceName} is not a {event.provider} instance of the tenant")
        try:
            reports = provider.parse_callback(instance, event.body.encode())
        except CallbackRefused as e:
            raise Reject(f"malformed {event.provider} callback: {e}") from e
        if not self._same_session(instance, event):
            log.warning("callback for another session ignored", instance=instance["_id"])
            return
        for report in reports:
            if isinstance(report, Receipt):
                await self._callbacks.receipt(
                    instance, report.provider_message_id, report.status, errors=report.errors
                )
            elif isinstance(report, Inbound):
                await self._callbacks.inbound(
                    instance,
                    sender=report.sender,
                    push_name=report.push_name,
                    text=report.text,
                    provider_message_id=report.provider_message_id,
                    sent_at=report.sent_at,
                    message_type=report.message_type,
                    content=report.content,
                )
            elif isinstance(report, TemplateUpdate) and self._own_waba(instance, report):
                # Templates are template-sync's: it records the status and tells the tenant.
                await self._broker.publish(
                    TemplateStatusReported(
                        tenantId=instance["tenantId"],
                        instanceName=instance["_id"],
                        wabaId=report.waba_id,
                        metaTemplateId=report.meta_template_id,
                        name=report.name,
                        language=report.language,
                        status=report.status,
                        reason=report.reason,
                        category=report.category,
                        reportedAt=report.reported_at,
                    )
                )
            elif isinstance(report, StateChange):
                await self._state_change(instance, report)
        log.info("provider callback applied", provider=event.provider, reports=len(reports))

    async def _state_change(self, instance: Document, report: StateChange) -> None:
        """Apply a reported session state unless a newer report was recorded already."""
        if report.state != instance.get("state"):
            await self._callbacks.state(
                instance,
                report.state,
                phone_number=report.phone_number,
                reported_at=report.reported_at,
            )
            instance["state"] = report.state
        elif report.reported_at is not None:
            await self._callbacks.state_seen(instance, report.reported_at)

    def _same_session(self, instance: Document, event: ProviderCallback) -> bool:
        """False for a WAHA callback naming a session other than the instance's own."""
        if event.provider != "waha":
            return True
        session = parse_envelope(event.body.encode()).session
        own = (instance.get("providerConfig") or {}).get("session")
        return session is None or own is None or session == own

    @staticmethod
    def _own_waba(instance: Document, report: TemplateUpdate) -> bool:
        """Whether a template report is about the instance's own WhatsApp Business Account."""
        own = (instance.get("providerConfig") or {}).get("wabaId")
        if own is not None and report.waba_id != str(own):
            log.warning("template report for another account ignored", instance=instance["_id"])
            return False
        return True
