"""Provider callback bodies are type-checked whole, and the seal on `provider.callback`."""

import json
from typing import Any

import pytest

from lanegate.events import CALLBACK_SEAL_LABEL, ProviderCallback
from lanegate.providers import CallbackRefused, Inbound, Receipt, StateChange
from lanegate.providers.cloud_callbacks import parse_callback_body as parse_cloud
from lanegate.providers.waha_callbacks import parse_callback_body as parse_waha
from lanegate.secrets import Keyring, new_key
from lanegate.signing import event_seal, verify_event_seal


def cloud(value: dict[str, Any]) -> bytes:
    return json.dumps({"entry": [{"changes": [{"field": "messages", "value": value}]}]}).encode()


def refused_paths(parse: Any, body: bytes) -> list[list[str | int]]:
    with pytest.raises(CallbackRefused) as refused:
        parse(body)
    return [path for path, _ in refused.value.issues]


@pytest.mark.parametrize("bad", [{"$ne": None}, ["x"], 1, 1.5, True, None, ""])
def test_a_cloud_status_id_that_is_no_string_refuses_the_whole_callback(bad: Any) -> None:
    body = cloud(
        {"statuses": [{"id": "wamid.ok", "status": "read"}, {"id": bad, "status": "read"}]}
    )
    assert [["entry", 0, "changes", 0, "value", "statuses", 1, "id"]] == refused_paths(
        parse_cloud, body
    )


def test_cloud_timestamps_and_error_codes_are_checked() -> None:
    status = {"id": "w", "status": "failed", "timestamp": "12a", "errors": [{"code": "1"}]}
    assert [
        ["entry", 0, "changes", 0, "value", "statuses", 0, "timestamp"],
        ["entry", 0, "changes", 0, "value", "statuses", 0, "errors", 0, "code"],
    ] == refused_paths(parse_cloud, cloud({"statuses": [status]}))


def test_cloud_error_details_keep_only_known_fields() -> None:
    error = {"code": 131026, "title": "Undeliverable", "extra": {"$set": {"status": "x"}}}
    reports = parse_cloud(cloud({"statuses": [{"id": "w", "status": "failed", "errors": [error]}]}))
    assert [Receipt("w", "failed", [{"code": 131026, "title": "Undeliverable"}])] == reports


def test_an_unknown_cloud_status_is_no_receipt() -> None:
    assert [] == parse_cloud(cloud({"statuses": [{"id": "w", "status": "deleted"}]}))


@pytest.mark.parametrize(
    ("event", "path"),
    [
        ({"event": "message.ack", "payload": {"id": {"$ne": None}, "ack": 3}}, ["payload", "id"]),
        ({"event": "message.ack", "payload": {"id": "true_x", "ack": "3"}}, ["payload", "ack"]),
        ({"event": "message", "payload": {"id": "x", "from": ["1@c.us"]}}, ["payload", "from"]),
        ({"event": "session.status", "payload": {"status": 1}}, ["payload", "status"]),
        ({"event": "session.status", "timestamp": "1", "payload": {}}, ["timestamp"]),
        ({"event": {"$ne": None}, "payload": {}}, ["event"]),
    ],
)
def test_waha_fields_of_the_wrong_type_refuse_the_callback(
    event: dict[str, Any], path: list[str | int]
) -> None:
    assert path in refused_paths(parse_waha, json.dumps(event).encode())


def test_a_waha_session_status_carries_wahas_time_of_it() -> None:
    event = {
        "event": "session.status",
        "timestamp": 1_700_000_000_000,
        "payload": {"status": "STOPPED"},
    }
    [report] = parse_waha(json.dumps(event).encode())
    assert isinstance(report, StateChange)
    assert (report.state, report.reported_at and report.reported_at.timestamp()) == (
        "close",
        1_700_000_000.0,
    )


@pytest.mark.parametrize("body", [b"", b"not json", b"[]", b"null"])
def test_a_body_that_is_no_json_object_is_refused(body: bytes) -> None:
    assert [[]] == refused_paths(parse_cloud, body)
    assert [[]] == refused_paths(parse_waha, body)


def test_a_callback_seal_from_a_rotated_out_key_still_verifies() -> None:
    old, new = new_key(), new_key()
    event = ProviderCallback(tenantId="t", instanceName="i", provider="waha", body="{}")
    seal = event_seal(event.sealed_content(), Keyring(old).derived_keys(CALLBACK_SEAL_LABEL)[0])
    rotated = Keyring(f"{new},{old}").derived_keys(CALLBACK_SEAL_LABEL)
    other = Keyring(new_key()).derived_keys(CALLBACK_SEAL_LABEL)
    assert (True, False) == (
        verify_event_seal(event.sealed_content(), rotated, seal),
        verify_event_seal(event.sealed_content(), other, seal),
    )


def test_the_seal_covers_every_field_of_the_event() -> None:
    event = ProviderCallback(tenantId="t", instanceName="i", provider="waha", body="{}")
    keys = Keyring(new_key()).derived_keys(CALLBACK_SEAL_LABEL)
    seal = event_seal(event.sealed_content(), keys[0])
    changed = [
        event.model_copy(update={field: "x"})
        for field in ("tenantId", "instanceName", "provider", "body", "id")
    ]
    assert [False] * 5 == [verify_event_seal(e.sealed_content(), keys, seal) for e in changed]
    parsed = ProviderCallback.model_validate_json(
        event.model_copy(update={"seal": seal}).model_dump_json()
    )
    assert verify_event_seal(parsed.sealed_content(), keys, parsed.seal)


def test_the_derived_key_is_not_the_sealing_key() -> None:
    key = new_key()
    assert key.encode() not in Keyring(key).derived_keys(CALLBACK_SEAL_LABEL)


@pytest.mark.parametrize(("given", "kept"), [(-34.6, -34.6), ("-34.6", -34.6), (10, 10.0)])
def test_a_waha_location_is_numbers_however_the_engine_writes_them(given: Any, kept: float) -> None:
    payload = {"id": "false_x", "from": "1@c.us", "location": {"latitude": given, "longitude": 1}}
    [report] = parse_waha(json.dumps({"event": "message", "payload": payload}).encode())
    assert isinstance(report, Inbound) and report.content is not None
    assert kept == report.content["latitude"]


@pytest.mark.parametrize("bad", [{"$gt": 0}, "north", True, 1e9, None])
def test_a_location_coordinate_that_is_no_number_is_refused(bad: Any) -> None:
    payload = {"id": "false_x", "from": "1@c.us", "location": {"latitude": bad, "longitude": 1}}
    body = json.dumps({"event": "message", "payload": payload}).encode()
    assert [["payload", "location", "latitude"]] == refused_paths(parse_waha, body)
