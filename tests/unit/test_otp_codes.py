"""Codes, their keyed hashes and the masked content that carries one."""

from typing import Any

from lanegate import otp
from lanegate.secrets import Keyring, new_key


def test_a_code_has_the_asked_number_of_digits() -> None:
    codes = [otp.draw_code(length) for length in range(4, 11)]
    assert list(range(4, 11)) == [len(c) for c in codes]
    assert all(c.isdigit() for c in codes)


def test_a_code_matches_only_its_own_hash() -> None:
    keys = otp.hash_keys(Keyring(new_key()))
    stored = otp.code_hash(keys[0], "otp-1", "123456")
    assert otp.code_matches(keys, "otp-1", "123456", stored)
    assert not otp.code_matches(keys, "otp-1", "123457", stored)
    # The same code of another OTP hashes apart.
    assert not otp.code_matches(keys, "otp-2", "123456", stored)


def test_the_hash_is_keyed_by_the_secret_key_and_survives_its_rotation() -> None:
    old, new = new_key(), new_key()
    stored = otp.code_hash(otp.hash_keys(Keyring(old))[0], "otp-1", "123456")
    assert "123456" not in stored
    assert not otp.code_matches(otp.hash_keys(Keyring(new)), "otp-1", "123456", stored)
    assert otp.code_matches(otp.hash_keys(Keyring(f"{new},{old}")), "otp-1", "123456", stored)


def test_without_a_secret_key_codes_are_still_hashed() -> None:
    keys = otp.hash_keys(Keyring(""))
    stored = otp.code_hash(keys[0], "otp-1", "123456")
    assert "123456" not in stored and otp.code_matches(keys, "otp-1", "123456", stored)


def test_revealed_content_has_the_code_where_the_mask_was_and_no_sealed_copy() -> None:
    keyring = Keyring(new_key())
    content: dict[str, Any] = {
        "text": otp.masked_text("Your code: {{code}}"),
        "name": "auth",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": otp.MASK}]}],
        otp.SEALED_CODE: keyring.encrypt("4321"),
    }
    assert "Your code: ******" == content["text"]
    shown = otp.revealed(content, keyring.decrypt(content[otp.SEALED_CODE]))
    assert {
        "text": "Your code: 4321",
        "name": "auth",
        "components": [{"type": "body", "parameters": [{"type": "text", "text": "4321"}]}],
    } == shown
