"""The webhook bodies the dispatcher builds match what the OpenAPI `webhooks` section promises."""

from datetime import UTC, datetime

import pytest

from lanegate.events import (
    AnyEvent,
    InstancePaused,
    InstanceResumed,
    InstanceState,
    MessageExpired,
    MessageReceived,
    MessageStatus,
    TemplateStatusChanged,
    otp_finished,
)
from lanegate.webhook_payloads import WEBHOOKS
from webhook_dispatcher.envelope import envelope

EVENTS: list[AnyEvent] = [
    InstanceState(tenantId="acme", instanceName="acme__a__b", state="open", phoneNumber="549111"),
    InstanceState(tenantId="acme", instanceName="acme__a__b", state="close", reason="logout"),
    InstancePaused(tenantId="acme", instanceName="acme__a__b", reason="holiday", by="tenant"),
    InstancePaused(
        tenantId="acme",
        instanceName="acme__a__b",
        reason="spam_rate_limit",
        until=datetime(2026, 1, 2, tzinfo=UTC),
    ),
    InstanceResumed(tenantId="acme", instanceName="acme__a__b"),
    MessageStatus(
        tenantId="acme",
        instanceName="acme__a__b",
        messageId="m1",
        status="failed",
        to="5491112345678",
        lane="bulk",
        error={"code": "x", "message": "y"},
    ),
    MessageReceived(
        tenantId="acme",
        instanceName="acme__a__b",
        sender="5491112345678",
        pushName="Juan",
        text="hi",
        providerMessageId="ABC",
        sentAt=1773596760,
    ),
    MessageReceived(
        tenantId="acme",
        instanceName="acme__a__b",
        sender="5491112345678",
        pushName=None,
        messageType="imageMessage",
        text=None,
        providerMessageId="ABD",
        sentAt=1773596761,
        content={"mimetype": "image/jpeg", "caption": "receipt"},
    ),
    MessageExpired(
        tenantId="acme",
        instanceName="acme__a__b",
        messageId="m2",
        to="5491112345678",
        lane="normal",
        validUntil=datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC),
    ),
    TemplateStatusChanged(
        tenantId="acme",
        instanceName="acme__a__b",
        templateId="t1",
        metaTemplateId="920070352646140",
        name="order_update",
        language="pt_BR",
        status="REJECTED",
        previousStatus="PENDING",
        reason="INVALID_FORMAT",
    ),
    *(
        otp_finished(
            {"_id": "o1", "tenantId": "acme", "instanceName": "acme__a__b", "to": "549111"},
            outcome,
        )
        for outcome in ("verified", "blocked", "expired")
    ),
]


@pytest.mark.parametrize("event", EVENTS, ids=lambda e: e.kind + getattr(e, "status", ""))
def test_envelope_validates_against_its_documented_model(event: AnyEvent) -> None:
    body = envelope(event)
    assert body is not None
    model = WEBHOOKS[body["event"]]
    assert body == model.model_validate(body).model_dump(by_alias=True, exclude_unset=True)


def test_media_details_are_sent_and_a_text_has_none() -> None:
    text, media = (envelope(event) for event in EVENTS if isinstance(event, MessageReceived))
    assert text is not None and media is not None
    assert "content" not in text["data"]
    assert {"mimetype": "image/jpeg", "caption": "receipt"} == media["data"]["content"]


def test_an_expired_message_says_until_when_it_was_worth_sending() -> None:
    [body] = [envelope(event) for event in EVENTS if isinstance(event, MessageExpired)]
    assert body is not None
    assert {"id": "m2", "status": "expired", "to": "5491112345678", "lane": "normal"} | {
        "validUntil": "2026-01-02T03:04:05.000Z"
    } == body["data"]


def test_connecting_state_is_not_sent_to_tenants() -> None:
    event = InstanceState(tenantId="acme", instanceName="acme__a__b", state="connecting")
    assert envelope(event) is None
