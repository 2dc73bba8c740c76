"""Secrets at rest: sealing, opening, rotation, plaintext from before, and log redaction."""

import pytest

from lanegate.logging import REDACTED, redact_secrets
from lanegate.secrets import Keyring, SecretKeyError, is_sealed, new_key


def test_a_sealed_secret_opens_to_itself_and_hides_the_plaintext() -> None:
    keyring = Keyring(new_key())
    sealed = keyring.encrypt("whsec-plain-value-123")
    assert (True, False) == (is_sealed(sealed), "whsec-plain-value-123" in sealed)
    assert "whsec-plain-value-123" == keyring.decrypt(sealed)


def test_plaintext_written_before_sealing_still_opens() -> None:
    assert "old-plain-secret" == Keyring(new_key()).decrypt("old-plain-secret")


def test_an_old_key_still_opens_after_rotation_and_reseal_moves_to_the_new_one() -> None:
    old, new = new_key(), new_key()
    sealed = Keyring(old).encrypt("rotate-me")
    rotated = Keyring(f"{new},{old}")
    resealed = rotated.reseal(sealed)
    assert "rotate-me" == rotated.decrypt(sealed)
    assert "rotate-me" == Keyring(new).decrypt(resealed)
    assert resealed == rotated.reseal(resealed)


def test_reseal_seals_plaintext() -> None:
    keyring = Keyring(new_key())
    assert "legacy" == keyring.decrypt(keyring.reseal("legacy"))
    assert is_sealed(keyring.reseal("legacy"))


def test_without_a_key_values_stay_as_given_and_sealed_ones_fail_clearly() -> None:
    sealed = Keyring(new_key()).encrypt("x")
    bare = Keyring("")
    assert (False, "plain") == (bare.enabled, bare.encrypt("plain"))
    with pytest.raises(SecretKeyError, match="LANEGATE_SECRET_KEY is not set"):
        bare.decrypt(sealed)


def test_a_wrong_key_fails_clearly() -> None:
    sealed = Keyring(new_key()).encrypt("x")
    with pytest.raises(SecretKeyError, match="wrong or removed key"):
        Keyring(new_key()).decrypt(sealed)


def test_a_malformed_key_is_refused() -> None:
    with pytest.raises(SecretKeyError, match="Fernet keys"):
        Keyring("not-a-key")


def test_provider_config_secrets_are_sealed_and_other_fields_are_not() -> None:
    keyring = Keyring(new_key())
    config = {"phoneNumberId": "123", "accessToken": "EAAtoken", "appSecret": "app-secret"}
    sealed = keyring.seal_config(config)
    assert "123" == sealed["phoneNumberId"]
    assert not ({"EAAtoken", "app-secret"} & set(sealed.values()))
    assert config == keyring.open_config(sealed)


def test_log_lines_never_carry_secret_looking_keys() -> None:
    event = {
        "event": "instance created",
        "webhookSecret": "s",
        "providerConfig": {"accessToken": "t", "session": "default"},
        "headers": [{"Authorization": "Bearer x"}],
    }
    redacted = redact_secrets(None, "info", event)
    assert REDACTED == redacted["webhookSecret"]
    assert {"accessToken": REDACTED, "session": "default"} == redacted["providerConfig"]
    assert [{"Authorization": REDACTED}] == redacted["headers"]
