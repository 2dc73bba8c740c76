"""The account rules that need no stack: which limit is in force, which scopes a new key may
get, and passwords checked the same way whether or not the user exists."""

import pytest

from ingress_api.accounts.keys import refuse_scopes_beyond, scopes_for_new_key
from ingress_api.accounts.limits import attachment_max_bytes, limits_in_force
from ingress_api.accounts.passwords import hash_password, password_matches
from lanegate.errors import InsufficientScope


def test_the_tenants_own_limit_wins_then_the_plans_then_none() -> None:
    plan = {"maxInstances": 3, "maxMessagesPerDay": 50, "requestsPerMinute": 10}
    tenant = {"maxInstances": None, "maxMessagesPerDay": 7, "maxBulkSize": 0}
    unset = dict.fromkeys(
        ("maxMessagesPerMonth", "maxAttachmentBytes", "otpSendsPerHour", "otpMaxLiveCodes")
    )

    assert {
        "maxInstances": 3,
        "maxMessagesPerDay": 7,
        "requestsPerMinute": 10,
        "maxBulkSize": 0,  # zero is a limit of its own, not "unset"
    } | unset == limits_in_force(tenant, plan)
    assert {
        "maxInstances": None,
        "maxMessagesPerDay": 7,
        "requestsPerMinute": None,
        "maxBulkSize": 0,
    } | unset == limits_in_force(tenant, None)


def test_a_tenants_attachment_limit_never_raises_the_gateways() -> None:
    assert (1024, 2048, 2048) == (
        attachment_max_bytes(1024, 2048),
        attachment_max_bytes(4096, 2048),
        attachment_max_bytes(None, 2048),
    )


def test_a_new_key_gets_scopes_within_its_makers_only() -> None:
    assert scopes_for_new_key(None, None) is None
    assert ["a:read"] == scopes_for_new_key(None, ["a:read", "a:read"])
    assert ["a:read", "b:write"] == scopes_for_new_key(("b:write", "a:read"), None)
    assert ["a:read"] == scopes_for_new_key(("a:read", "b:write"), ["a:read"])
    with pytest.raises(InsufficientScope, match="c:write"):
        scopes_for_new_key(("a:read",), ["a:read", "c:write"])
    with pytest.raises(InsufficientScope):
        refuse_scopes_beyond(("a:read",), None)  # every scope is beyond a scoped holder
    refuse_scopes_beyond(None, None)


def test_passwords_match_only_their_hash_and_nobody_matches_nothing() -> None:
    stored = hash_password("correct horse battery")
    assert stored.startswith("$argon2id$")
    assert password_matches(stored, "correct horse battery")
    assert not password_matches(stored, "correct horse batterY")
    assert not password_matches(None, "correct horse battery")
    assert not password_matches("not a hash", "x")
