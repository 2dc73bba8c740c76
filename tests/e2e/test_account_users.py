"""People who sign in: users with roles, invitations, e-mail and password sign-in with JWT
access tokens, refresh rotation (a reused token ends the session), signing out, and every
bad token answering 401."""

import base64
import json
import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import aiohttp
import jwt
import pytest

from lanegate.secrets import Keyring
from tests.conftest import SECRET_KEY
from tests.support.gateway import Gateway, eventually

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"


def _email() -> str:
    return f"u{uuid.uuid4().hex[:10]}@example.com"


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _user(gateway: Gateway, key: str, role: str, email: str | None = None) -> str:
    email = email or _email()
    status, body = await gateway.call(
        "POST", "/account/users", key=key, json={"email": email, "role": role, "password": PASSWORD}
    )
    assert 201 == status, body
    return email


async def _login(gateway: Gateway, email: str, password: str = PASSWORD) -> tuple[int, Any]:
    return await gateway.call("POST", "/auth/login", json={"email": email, "password": password})


async def test_a_user_signs_in_and_the_token_works_as_a_key_by_role(gateway: Gateway) -> None:
    tenant_id, key = await gateway.tenant()
    admin = await _user(gateway, key, "admin")
    viewer = await _user(gateway, key, "viewer")

    status, tokens = await _login(gateway, admin.upper())

    assert 200 == status, tokens
    assert ("bearer", 900) == (tokens["token_type"], tokens["expires_in"])
    assert (admin, "admin", tenant_id) == (
        tokens["user"]["email"],
        tokens["user"]["role"],
        tokens["user"]["tenantId"],
    )
    header = jwt.get_unverified_header(tokens["access_token"])
    assert ("HS256", True) == (header["alg"], bool(header.get("kid")))
    status, account = await gateway.call("GET", "/account", headers=_bearer(tokens["access_token"]))
    assert (200, tenant_id) == (status, account["id"])
    status, _ = await gateway.call(
        "POST", "/account/keys", json={"name": "x"}, headers=_bearer(tokens["access_token"])
    )
    assert 201 == status

    _, seen = await _login(gateway, viewer)
    viewer_token = _bearer(seen["access_token"])
    assert 200 == (await gateway.call("GET", "/instances", headers=viewer_token))[0]
    status, body = await gateway.call(
        "POST", "/account/keys", json={"name": "x"}, headers=viewer_token
    )
    assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"])
    status, listed = await gateway.call("GET", "/account/users", key=key)
    assert sorted([admin, viewer]) == sorted(u["email"] for u in listed)
    assert "passwordHash" not in json.dumps(listed) and PASSWORD not in json.dumps(listed)


async def test_unknown_email_and_wrong_password_get_the_same_401(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    email = await _user(gateway, key, "member")
    answers = []
    for who, password in ((email, "wrong password!!"), (_email(), PASSWORD)):
        started = time.monotonic()
        status, body = await _login(gateway, who, password)
        answers.append((status, body, time.monotonic() - started))
    assert answers[0][:2] == answers[1][:2]
    assert (401, "UNAUTHORIZED") == (answers[0][0], answers[0][1]["code"])
    # Both pay for one argon2id check: neither answers in a small fraction of the other's time.
    assert answers[1][2] > answers[0][2] / 5 and answers[0][2] > answers[1][2] / 5

    status, body = await gateway.call(
        "POST",
        "/account/users",
        key=key,
        json={"email": _email(), "role": "admin", "password": "short"},
    )
    assert (400, ["password"]) == (status, body["issues"][0]["path"])
    status, body = await gateway.call(
        "POST", "/account/users", key=key, json={"email": email, "role": "admin"}
    )
    assert 409 == status
    status, body = await gateway.call(
        "POST", "/account/users", key=key, json={"email": "x@y.z", "role": "owner"}
    )
    assert (400, ["role"]) == (status, body["issues"][0]["path"])


async def test_failed_sign_ins_are_throttled_per_email(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    email = await _user(gateway, key, "member")
    # A success costs nothing: only failures count.
    for _ in range(12):
        assert 200 == (await _login(gateway, email))[0]
    statuses = [(await _login(gateway, email, "nope nope nope"))[0] for _ in range(10)]
    assert [401] * 10 == statuses
    async with (
        aiohttp.ClientSession() as http,
        http.post(gateway.api + "/auth/login", json={"email": email, "password": PASSWORD}) as r,
    ):
        assert 429 == r.status
        assert int(r.headers["Retry-After"]) >= 1
        assert "RATE_LIMITED" == (await r.json())["code"]


async def test_failed_sign_ins_are_throttled_per_client_behind_the_trusted_proxy(
    gateway: Gateway,
) -> None:
    # The throttle counts per 5 minutes of the clock: start early in one.
    await eventually(lambda: _early_in_five_minutes(), timeout=90, every=0.5)

    async def attempt(client: str) -> int:
        status, _ = await gateway.call(
            "POST",
            "/auth/login",
            json={"email": _email(), "password": "nope nope nope"},
            headers={
                "X-Forwarded-For": f"198.51.100.1, {client}"
            },  # the first is the client's own claim
        )
        return status

    client = f"203.0.113.{uuid.uuid4().int % 250 + 1}"
    assert [401] * 30 == [await attempt(client) for _ in range(30)]
    assert 429 == await attempt(client)
    # Another client behind the same proxy is not held, even when it claims the first's address.
    assert 401 == await attempt("192.0.2.77")
    status, _ = await gateway.call(
        "POST",
        "/auth/login",
        json={"email": _email(), "password": "nope nope nope"},
        headers={"X-Forwarded-For": f"{client}, 192.0.2.78"},
    )
    assert 401 == status


async def _early_in_five_minutes() -> bool:
    return time.time() % 300 < 240


async def test_an_invitation_becomes_a_password(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    email = _email()
    status, made = await gateway.call(
        "POST", "/account/users", key=key, json={"email": email, "role": "member"}
    )
    assert (201, True) == (status, made["invited"]), made
    token = made["invitationToken"]
    assert (401,) == ((await _login(gateway, email))[0],)
    status, body = await gateway.call(
        "POST", "/auth/accept", json={"token": token, "password": "too short"}
    )
    assert 400 == status
    status, body = await gateway.call(
        "POST", "/auth/accept", json={"token": token, "password": PASSWORD}
    )
    assert (200, False) == (status, body["invited"])
    assert 200 == (await _login(gateway, email))[0]
    status, _ = await gateway.call(
        "POST", "/auth/accept", json={"token": token, "password": PASSWORD}
    )
    assert 401 == status


async def test_refresh_rotates_and_a_reused_token_ends_the_session(gateway: Gateway) -> None:
    _, key = await gateway.tenant()
    email = await _user(gateway, key, "member")
    _, first = await _login(gateway, email)

    status, second = await gateway.call(
        "POST", "/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert 200 == status, second
    assert second["refresh_token"] != first["refresh_token"]
    assert (
        200 == (await gateway.call("GET", "/account", headers=_bearer(second["access_token"])))[0]
    )

    # The spent token again: someone else has it, so the whole session ends.
    status, _ = await gateway.call(
        "POST", "/auth/refresh", json={"refresh_token": first["refresh_token"]}
    )
    assert 401 == status
    status, _ = await gateway.call(
        "POST", "/auth/refresh", json={"refresh_token": second["refresh_token"]}
    )
    assert 401 == status
    status, _ = await gateway.call("GET", "/account", headers=_bearer(second["access_token"]))
    assert 401 == status

    _, third = await _login(gateway, email)
    status, body = await gateway.call(
        "POST", "/auth/logout", json={"refresh_token": third["refresh_token"]}
    )
    assert (200, True) == (status, body["signedOut"])
    assert 401 == (await gateway.call("GET", "/account", headers=_bearer(third["access_token"])))[0]
    status, _ = await gateway.call(
        "POST", "/auth/refresh", json={"refresh_token": third["refresh_token"]}
    )
    assert 401 == status


def _b64(part: dict[str, Any]) -> str:
    return base64.urlsafe_b64encode(json.dumps(part).encode()).rstrip(b"=").decode()


async def test_bad_tokens_all_get_401(gateway: Gateway) -> None:
    tenant_id, key = await gateway.tenant()
    email = await _user(gateway, key, "member")  # a member: the last admin cannot be disabled
    _, tokens = await _login(gateway, email)
    good = tokens["access_token"]
    claims = jwt.decode(good, options={"verify_signature": False})
    kid = jwt.get_unverified_header(good)["kid"]

    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT', 'kid': kid})}.{_b64(claims)}."
    wrong_key = jwt.encode(claims, b"k" * 32, algorithm="HS256", headers={"kid": kid})
    past = datetime.now(UTC) - timedelta(minutes=20)
    expired = jwt.encode(
        claims | {"iat": past, "exp": past + timedelta(minutes=15)},
        Keyring(SECRET_KEY).derived_keys("lanegate access tokens")[0],
        algorithm="HS256",
        headers={"kid": kid},
    )
    for token in (unsigned, wrong_key, expired, good[:-3] + "abc"):
        status, body = await gateway.call("GET", "/account", headers=_bearer(token))
        assert (401, "UNAUTHORIZED") == (status, body["code"]), token

    # A disabled user, then a disabled tenant.
    status, users = await gateway.call("GET", "/account/users", key=key)
    user_id = next(u["id"] for u in users if u["email"] == email)
    assert 200 == (await gateway.call("GET", "/account", headers=_bearer(good)))[0]
    status, _ = await gateway.call(
        "PATCH", f"/account/users/{user_id}", key=key, json={"disabled": True}
    )
    assert 200 == status
    assert 401 == (await gateway.call("GET", "/account", headers=_bearer(good)))[0]
    assert 401 == (await _login(gateway, email))[0]

    other = await _user(gateway, key, "admin")
    _, tokens = await _login(gateway, other)
    status, _ = await gateway.call(
        "PATCH",
        f"/admin/tenants/{tenant_id}",
        json={"disabled": True},
        headers={"apikey": gateway.admin_key},
    )
    assert 200 == status
    assert (
        401 == (await gateway.call("GET", "/account", headers=_bearer(tokens["access_token"])))[0]
    )


async def test_the_operator_makes_a_tenants_first_admin_by_invitation(gateway: Gateway) -> None:
    tenant_id, _ = await gateway.tenant()
    email = _email()
    status, made = await gateway.call(
        "POST",
        f"/admin/tenants/{tenant_id}/users",
        json={"email": email, "role": "admin"},
        headers={"apikey": gateway.admin_key},
    )
    assert (201, tenant_id) == (status, made["tenantId"]), made
    status, _ = await gateway.call(
        "POST", "/auth/accept", json={"token": made["invitationToken"], "password": PASSWORD}
    )
    assert 200 == status
    _, tokens = await _login(gateway, email)
    status, users = await gateway.call(
        "GET", "/account/users", headers=_bearer(tokens["access_token"])
    )
    assert (200, [email]) == (status, [u["email"] for u in users])
    status, _ = await gateway.call(
        "POST",
        "/admin/tenants/nobody/users",
        json={"email": _email(), "role": "admin"},
        headers={"apikey": gateway.admin_key},
    )
    assert 404 == status


async def test_nobody_makes_or_changes_a_user_who_could_do_more_than_themselves(
    gateway: Gateway,
) -> None:
    _, key = await gateway.tenant()
    admin = await _user(gateway, key, "admin")
    status, narrow = await gateway.call(
        "POST",
        "/account/keys",
        key=key,
        json={"name": "hr", "scopes": ["users:read", "users:write", "instances:read"]},
    )
    assert 201 == status, narrow
    for role in ("admin", "viewer"):
        status, body = await gateway.call(
            "POST",
            "/account/users",
            key=narrow["apiKey"],
            json={"email": _email(), "role": role, "password": PASSWORD},
        )
        assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"]), role
    status, users = await gateway.call("GET", "/account/users", key=narrow["apiKey"])
    admin_id = next(u["id"] for u in users if u["email"] == admin)
    for method, body in (("PATCH", {"disabled": True}), ("DELETE", None)):
        status, answer = await gateway.call(
            method, f"/account/users/{admin_id}", key=narrow["apiKey"], json=body
        )
        assert (403, "INSUFFICIENT_SCOPE") == (status, answer["code"]), method
    assert 200 == (await _login(gateway, admin))[0]

    # A member signed in cannot manage users at all.
    member = await _user(gateway, key, "member")
    _, tokens = await _login(gateway, member)
    status, body = await gateway.call(
        "PATCH",
        f"/account/users/{admin_id}",
        json={"role": "viewer"},
        headers=_bearer(tokens["access_token"]),
    )
    assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"])


async def test_a_token_of_a_tenant_removed_from_the_store_gets_401(gateway: Gateway) -> None:
    tenant_id, key = await gateway.tenant()
    email = await _user(gateway, key, "admin")
    _, tokens = await _login(gateway, email)
    assert (
        200 == (await gateway.call("GET", "/account", headers=_bearer(tokens["access_token"])))[0]
    )

    async with gateway.mongo() as client:
        await client.lanegate_test.tenants.delete_one({"_id": tenant_id})

    status, body = await gateway.call("GET", "/account", headers=_bearer(tokens["access_token"]))
    assert (401, "UNAUTHORIZED") == (status, body["code"])
    assert 401 == (await _login(gateway, email))[0]


async def test_the_last_admin_who_can_sign_in_is_never_demoted_disabled_or_removed(
    gateway: Gateway,
) -> None:
    _, key = await gateway.tenant()
    first = await _user(gateway, key, "admin")
    status, listed = await gateway.call("GET", "/account/users", key=key)
    [first_id] = [u["id"] for u in listed if u["email"] == first]
    # An admin still invited cannot sign in: they do not count.
    status, invited = await gateway.call(
        "POST", "/account/users", key=key, json={"email": _email(), "role": "admin"}
    )
    assert 201 == status, invited

    for method, body in (
        ("PATCH", {"role": "member"}),
        ("PATCH", {"disabled": True}),
        ("DELETE", None),
    ):
        status, answer = await gateway.call(
            method, f"/account/users/{first_id}", key=key, json=body
        )
        assert (409, "CONFLICT") == (status, answer["code"]), (method, body)
    assert 200 == (await _login(gateway, first))[0]  # put back as it was
    status, listed = await gateway.call("GET", "/account/users", key=key)
    [kept] = [u for u in listed if u["id"] == first_id]
    assert ("admin", False) == (kept["role"], kept["disabled"])

    # With a second admin who can sign in, the first may step down.
    await _user(gateway, key, "admin")
    status, changed = await gateway.call(
        "PATCH", f"/account/users/{first_id}", key=key, json={"role": "member"}
    )
    assert (200, "member") == (status, changed["role"]), changed
