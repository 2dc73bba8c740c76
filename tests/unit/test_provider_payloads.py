"""Provider request bodies and callback parsing, checked against the providers' shapes."""

import json
from typing import Any

import pytest

from lanegate.providers import Inbound, Receipt, StateChange
from lanegate.providers.cloud_api import classify, hub_signature, verify_hub_signature
from lanegate.providers.cloud_callbacks import parse_callback_body
from lanegate.providers.cloud_payloads import message_payload
from lanegate.providers.sandbox import PAIRING_ALPHABET, pairing_code, qr_token
from lanegate.providers.waha import send_request, verify_waha_signature, waha_signature
from lanegate.providers.waha_callbacks import parse_callback_body as parse_waha
from tests.simulators.meta_schema import problems

MESSAGES: dict[str, dict[str, Any]] = {
    "text": {"text": "Hello"},
    "image": {"imageUrl": "https://cdn.example.com/a.jpg", "caption": "Look"},
    "document": {"documentUrl": "https://cdn.example.com/a.pdf", "fileName": "a.pdf"},
    "audio": {"audioUrl": "https://cdn.example.com/a.ogg"},
    "video": {"videoUrl": "https://cdn.example.com/a.mp4", "caption": "Watch"},
    "location": {"latitude": -34.6, "longitude": -58.38, "name": "Obelisco", "address": "BA"},
    "buttons": {
        "body": "Pick one",
        "buttons": [{"id": "yes", "title": "Yes"}, {"id": "no", "title": "No"}],
        "footer": "Thanks",
    },
    "list": {
        "body": "Menu",
        "button": "Options",
        "sections": [{"title": "Drinks", "rows": [{"id": "tea", "title": "Tea"}]}],
    },
    "template": {
        "name": "order_update",
        "language": "es_AR",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "Ana"}]}],
    },
}


def stored(kind: str) -> dict[str, Any]:
    return {"_id": "m-1", "to": "5491112345678", "type": kind, "content": MESSAGES[kind]}


@pytest.mark.parametrize("kind", sorted(MESSAGES))
def test_cloud_payload_conforms_to_metas_message_schema(kind: str) -> None:
    assert [] == problems("Message", message_payload(stored(kind), None))


def test_cloud_payload_carries_our_id_for_callbacks() -> None:
    assert "m-1" == message_payload(stored("text"), "Hi")["biz_opaque_callback_data"]


def test_schema_check_catches_an_unknown_field() -> None:
    body = message_payload(stored("text"), None) | {"colour": "red"}
    assert [] != problems("Message", body)


@pytest.mark.parametrize(
    ("code", "action"),
    [
        (130429, "backoff_number"),
        (131056, "delay_recipient"),
        (131047, "fail"),
        (131026, "fail"),
        (131051, "fail"),
        (132012, "fail"),
        (131048, "pause"),
        (131049, "pause"),
        (368, "pause"),
        (131031, "pause"),
        (1, "retry"),
        (2, "retry"),
        (131000, "retry"),
        (100, "fail"),
    ],
)
def test_meta_error_codes_map_to_actions(code: int, action: str) -> None:
    assert action == classify(code, "title").action


def test_unknown_meta_code_on_a_server_error_is_retried() -> None:
    assert "retry" == classify(424242, "title", http_status=503).action


def test_hub_signature_verifies_only_the_exact_body() -> None:
    body = b'{"object":"whatsapp_business_account"}'
    header = hub_signature(body, "app-secret")
    assert (True, False) == (
        verify_hub_signature(body, "app-secret", header),
        verify_hub_signature(body + b" ", "app-secret", header),
    )


def test_cloud_callback_yields_statuses_and_messages_of_every_entry_and_change() -> None:
    change = {
        "field": "messages",
        "value": {
            "statuses": [{"id": "wamid.A", "status": "delivered"}],
            "contacts": [{"wa_id": "549111", "profile": {"name": "Ana"}}],
            "messages": [
                {
                    "from": "549111",
                    "id": "wamid.B",
                    "timestamp": "5",
                    "type": "text",
                    "text": {"body": "Hi"},
                },
            ],
        },
    }
    body = json.dumps({"entry": [{"changes": [change]}, {"changes": [change]}]}).encode()
    reports = parse_callback_body(body)
    assert [Receipt, Inbound, Receipt, Inbound] == [type(r) for r in reports]
    assert Inbound("549111", "Ana", "conversation", "Hi", "wamid.B", 5) == reports[1]


def test_waha_requests_use_chat_ids_and_its_endpoints() -> None:
    path, body = send_request("default", stored("image"), "Look")
    assert ("/api/sendImage", "5491112345678@c.us") == (path, body["chatId"])
    assert {"url": "https://cdn.example.com/a.jpg"} == body["file"]


def test_waha_signature_is_hmac_sha512_hex() -> None:
    header = waha_signature(b"{}", "key")
    assert (128, True) == (len(header), verify_waha_signature(b"{}", "key", header))


def test_waha_callbacks_map_acks_and_session_states() -> None:
    ack = {"event": "message.ack", "payload": {"id": "true_x", "ack": 3}}
    state = {"event": "session.status", "payload": {"status": "WORKING", "me": {"id": "549@c.us"}}}
    assert [Receipt("true_x", "read")] == parse_waha(json.dumps(ack).encode())
    assert [StateChange("open", "549", "WORKING")] == parse_waha(json.dumps(state).encode())


def test_waha_own_messages_are_not_inbound() -> None:
    echo = {"event": "message", "payload": {"id": "true_x", "fromMe": True, "from": "1@c.us"}}
    assert [] == parse_waha(json.dumps(echo).encode())


def test_sandbox_qr_token_rotates() -> None:
    key = b"k" * 16
    assert qr_token("a__b__c", 0, key) == qr_token("a__b__c", 19, key)
    assert qr_token("a__b__c", 0, key) != qr_token("a__b__c", 20, key)


def test_sandbox_pairing_code_is_eight_whatsapp_characters() -> None:
    code = pairing_code()
    assert 8 == len(code) and set(code) <= set(PAIRING_ALPHABET)
