"""Property tests (hypothesis) for the parsers and checks that face untrusted input."""

import hashlib
import hmac
import random

import phonenumbers
import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from ingress_api.schemas.base import parse_instance_name
from ingress_api.schemas.messages import TextMessage
from lanegate.phones import InvalidPhoneNumber, normalized
from lanegate.providers.cloud_api import hub_signature, verify_hub_signature
from lanegate.providers.waha import verify_waha_signature, waha_signature
from lanegate.signing import gateway_signature, standard_signature, verify_gateway_signature
from lanegate.spintax import SpintaxError, spin, validate, variants

PART = st.from_regex(r"[A-Za-z0-9][A-Za-z0-9-]{0,20}", fullmatch=True)
PLAIN = st.text(alphabet=st.characters(blacklist_characters="{}|\\"), max_size=12)


@st.composite
def spintax(draw: st.DrawFn, depth: int = 0) -> str:
    """Well-formed spintax: plain text and groups, nested up to three levels."""
    parts = []
    for _ in range(draw(st.integers(0, 3))):
        if depth < 3 and draw(st.booleans()):
            options = [draw(spintax(depth + 1)) for _ in range(draw(st.integers(1, 3)))]
            parts.append("{" + "|".join(options) + "}")
        else:
            parts.append(draw(PLAIN))
    return "".join(parts)


@given(spintax(), st.integers())
def test_every_spin_is_one_of_the_variants(text: str, seed: int) -> None:
    assert spin(text, random.Random(seed)) in variants(text)


@given(st.text(max_size=40))
def test_any_text_either_validates_or_names_a_position_inside_it(text: str) -> None:
    try:
        validate(text)
    except SpintaxError as e:
        assert 0 <= e.position < len(text)
    else:
        assert isinstance(spin(text), str)


@given(PLAIN)
def test_escaped_text_spins_to_itself(text: str) -> None:
    escaped = "".join("\\" + c if c in "{}|\\" else c for c in text)
    assert text == spin(escaped)


@given(PART, PART, PART)
def test_instance_names_round_trip(tenant: str, client: str, label: str) -> None:
    assert (tenant, client, label) == parse_instance_name(f"{tenant}__{client}__{label}")


@given(st.text(max_size=60))
def test_instance_name_parser_never_accepts_fewer_than_three_parts(name: str) -> None:
    parts = parse_instance_name(name)
    if parts is not None:
        assert name == "__".join(parts)
        assert all(parts)


@given(st.text(alphabet="0123456789+ -().", max_size=20) | st.text(max_size=20))
def test_any_accepted_to_is_stored_as_digits_that_read_back_as_themselves(to: str) -> None:
    try:
        stored = TextMessage(instanceName="a__b__c", to=to, text="hi").to
    except ValidationError:
        return
    assert stored.isascii() and stored.isdigit() and len(stored) <= 15
    assert stored == normalized(stored)


@pytest.mark.parametrize("written", ["3580000000", "+358 000 000", "35800000", "+39 0000 0000"])
def test_a_national_part_of_only_zeros_is_no_number(written: str) -> None:
    with pytest.raises(InvalidPhoneNumber):
        normalized(written)


@given(st.from_regex(r"[1-9][0-9]{7,14}", fullmatch=True), st.sampled_from([None, "BR", "US"]))
def test_plain_digits_that_are_a_valid_number_are_stored_in_its_e164_form(
    to: str, country: str | None
) -> None:
    try:
        number = phonenumbers.parse("+" + to)
    except phonenumbers.NumberParseException:
        return  # no country has this code
    if phonenumbers.is_valid_number(number):
        e164 = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)
        assert e164.removeprefix("+") == normalized(to, country)


@given(st.binary(max_size=200), st.text(min_size=16, max_size=40))
def test_gateway_signature_is_the_seed_recipe_and_only_verifies_its_body(
    body: bytes, secret: str
) -> None:
    signature = gateway_signature(body, secret)
    assert hmac.new(secret.encode(), body, hashlib.sha256).hexdigest() == signature
    assert verify_gateway_signature(body, secret, signature)
    assert not verify_gateway_signature(body + b"x", secret, signature)


@given(st.text(min_size=1, max_size=30), st.integers(0, 2**40), st.binary(max_size=100))
def test_standard_signature_changes_with_id_timestamp_and_body(
    webhook_id: str, timestamp: int, body: bytes
) -> None:
    secret = "0123456789abcdef"
    signature = standard_signature(webhook_id, timestamp, body, secret)
    assert signature.startswith("v1,")
    assert signature != standard_signature(webhook_id + "x", timestamp, body, secret)
    assert signature != standard_signature(webhook_id, timestamp + 1, body, secret)
    assert signature != standard_signature(webhook_id, timestamp, body + b"x", secret)


@given(st.binary(max_size=512), st.text(min_size=1, max_size=64), st.binary(max_size=512))
def test_hub_signature_verifies_its_own_body_only(body: bytes, secret: str, other: bytes) -> None:
    header = hub_signature(body, secret)
    expected = "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
    assert expected == header
    assert verify_hub_signature(body, secret, header)
    assert (other == body) == verify_hub_signature(other, secret, header)


@given(st.binary(max_size=512), st.text(min_size=1, max_size=64), st.binary(max_size=512))
def test_waha_hmac_verifies_its_own_body_only(body: bytes, key: str, other: bytes) -> None:
    header = waha_signature(body, key)
    assert hmac.new(key.encode(), body, hashlib.sha512).hexdigest() == header
    assert verify_waha_signature(body, key, header)
    assert (other == body) == verify_waha_signature(other, key, header)


@given(st.binary(max_size=256), st.text(min_size=1, max_size=32), st.text(max_size=200))
def test_any_signature_header_is_refused_without_an_error(
    body: bytes, secret: str, header: str
) -> None:
    assert (header == hub_signature(body, secret)) == verify_hub_signature(body, secret, header)
    assert (header == waha_signature(body, secret)) == verify_waha_signature(body, secret, header)
