"""The console's sign-in with e-mail and password (tokens refreshed, signing out ends them) and
its account, keys and users views, in headless Chromium."""

import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from playwright.async_api import Browser, Page, ViewportSize, expect

from lanegate.secrets import Keyring
from tests.conftest import SECRET_KEY
from tests.e2e.test_console import browser, shot  # noqa: F401 - the browser fixture
from tests.support.gateway import Gateway, eventually
from tests.support.receiver import Receiver

pytestmark = pytest.mark.e2e

PASSWORD = "correct horse battery"
SENT = 4


def _email() -> str:
    return f"u{uuid.uuid4().hex[:10]}@example.com"


async def _first_admin(gateway: Gateway, tenant_id: str) -> str:
    email = _email()
    status, body = await gateway.call(
        "POST",
        f"/admin/tenants/{tenant_id}/users",
        headers={"apikey": gateway.admin_key},
        json={"email": email, "role": "admin", "password": PASSWORD},
    )
    assert 201 == status, body
    return email


async def _sign_in(page: Page, gateway: Gateway, email: str, password: str = PASSWORD) -> None:
    await page.goto(gateway.api + "/console")
    form = page.locator("#password-sign-in")
    await form.locator("input[name=email]").fill(email)
    await form.locator("input[name=password]").fill(password)
    await form.locator("button").click()


async def _new_admin_signed_in(
    gateway: Gateway, chromium: Browser, viewport: ViewportSize | None = None
) -> tuple[Page, str]:
    """A page where the first admin of a new tenant signed in; the page and the e-mail."""
    tenant_id, _ = await gateway.tenant()
    email = await _first_admin(gateway, tenant_id)
    page = await chromium.new_page(viewport=viewport)
    await _sign_in(page, gateway, email)
    await expect(page.locator("h1")).to_have_text("Account")
    return page, email


async def _session(page: Page) -> dict[str, Any]:
    stored = await page.evaluate("sessionStorage.getItem('lanegate.session')")
    assert stored, "no session stored"
    session: dict[str, Any] = json.loads(stored)
    return session


async def _put_session(page: Page, session: dict[str, Any]) -> None:
    await page.evaluate("s => sessionStorage.setItem('lanegate.session', s)", json.dumps(session))


def _today() -> str:
    return datetime.now(UTC).date().isoformat()


async def _sent_today(gateway: Gateway, key: str) -> bool:
    """Whether today's usage counts every message as accepted and sent (each is written by
    its own service, a second after it is counted)."""
    _, usage = await gateway.call("GET", "/account/usage", key=key)
    today = usage["periods"][-1]["totals"]
    return bool(SENT == today["accepted"] == today["sent"])


async def test_an_admin_sees_the_account_and_manages_keys_and_users(
    gateway: Gateway,
    receiver: Receiver,
    browser: Browser,  # noqa: F811
) -> None:
    tenant = await gateway.tenant_with_instance(receiver.url())
    email = await _first_admin(gateway, tenant.tenant_id)
    for n in range(SENT):
        status, body = await gateway.call(
            "POST",
            "/message/text",
            key=tenant.key,
            json={
                "instanceName": tenant.name,
                "to": f"54911{n:08d}",
                "text": "hi",
                "lane": "urgent",
            },
        )
        assert 202 == status, body
    await eventually(lambda: _sent_today(gateway, tenant.key), timeout=30)
    # Its one instance is all it may have; four messages are near the five a day it may send.
    status, body = await gateway.call(
        "PATCH",
        f"/admin/tenants/{tenant.tenant_id}",
        headers={"apikey": gateway.admin_key},
        json={"maxInstances": 1, "maxMessagesPerDay": SENT + 1},
    )
    assert 200 == status, body

    page = await browser.new_page(viewport={"width": 1280, "height": 900})
    await _sign_in(page, gateway, email)
    await expect(page.locator("h1")).to_have_text("Account")
    await expect(page.locator("#signed-in-as")).to_have_text(f"{email} (admin)")
    await expect(page.locator("#account-name")).to_have_text(tenant.tenant_id)
    await expect(page.locator("#account-instances")).to_have_text("1 (1 open)")
    today = page.locator('#limits tr[data-limit="messagesToday"]')
    await expect(today.locator("td")).to_have_text(["Messages today", "4", "5", "near the limit"])
    await expect(today).to_have_class("limit-near")
    instances = page.locator('#limits tr[data-limit="instances"]')
    await expect(instances.locator("td")).to_have_text(["Instances", "1", "1", "at the limit"])
    await expect(instances).to_have_class("limit-over")
    plain = page.locator('#limits tr[data-limit="bulkSize"]')
    await expect(plain.locator("td")).to_have_text(["Messages per bulk", "not counted", "1000", ""])
    await expect(page.locator(f'#usage-chart rect.sent[data-day="{_today()}"]')).to_have_attribute(
        "data-value", str(SENT)
    )
    assert 30 == await page.locator("#usage-chart rect.sent").count()
    row = page.locator(f'#usage tr[data-day="{_today()}"]')
    await expect(row.locator('[data-count="sent"]')).to_have_text(str(SENT))
    await expect(row.locator('[data-count="accepted"]')).to_have_text(str(SENT))
    await shot(page, "20-account")
    assert PASSWORD not in page.url and "token" not in page.url

    # A key with two scopes: it reads instances and nothing more, until it is deleted.
    await page.click("nav >> text=Keys")
    form = page.locator("#create-key")
    await form.locator("input[name=name]").fill("console-made")
    await form.locator("input[name=expiresAt]").fill("2020-01-01T12:00")
    await form.locator("button").click()
    await expect(form.locator(".errors")).to_have_text("expiresAt: Must be in the future")
    await form.locator("input[name=expiresAt]").fill("2099-01-01T12:00")
    await form.locator("input[value='instances:read']").check()
    await form.locator("input[value='messages:read']").check()
    await form.locator("button").click()
    secret = await page.locator("#new-key-secret").text_content()
    assert secret
    await expect(page.locator("#created-key")).to_contain_text("shown once")
    made = page.locator("#keys tbody tr", has_text="console-made")
    await expect(made).to_contain_text("instances:read, messages:read")
    await expect(made).not_to_contain_text("never")
    _, listed = await gateway.call("GET", "/account/keys", key=tenant.key)
    assert "2099-01-01" == next(k for k in listed if k["name"] == "console-made")["expiresAt"][:10]
    await shot(page, "21-key-created")
    assert 200 == (await gateway.call("GET", "/instances", key=secret))[0]
    status, body = await gateway.call(
        "POST",
        "/message/text",
        key=secret,
        json={"instanceName": tenant.name, "to": "5491100000000", "text": "no"},
    )
    assert (403, "INSUFFICIENT_SCOPE") == (status, body["code"])
    page.once("dialog", lambda dialog: dialog.accept())
    await made.locator("button", has_text="Delete").click()
    await expect(made).to_have_count(0)
    assert 401 == (await gateway.call("GET", "/instances", key=secret))[0]

    # An invited viewer made a member, disabled and enabled again.
    invited = _email()
    await page.click("nav >> text=Users")
    form = page.locator("#add-user")
    await form.locator("input[name=email]").fill(invited)
    await form.locator("select[name=role]").select_option("viewer")
    await form.locator("button").click()
    token = await page.locator("#invitation-token").text_content()
    assert token and token.startswith("lgi_")
    user = page.locator(f'#users tr[data-user="{invited}"]')
    await expect(user.locator(".user-status")).to_have_text("invited")
    await user.locator("select[name=role]").select_option("member")
    await expect(page.locator("#flash")).to_have_text("Role changed")
    await user.locator("button", has_text="Disable").click()
    await expect(user.locator(".user-status")).to_have_text("disabled")
    await user.locator("button", has_text="Enable").click()
    await expect(user.locator(".user-status")).to_have_text("invited")
    await shot(page, "22-users")
    _, listed = await gateway.call("GET", "/account/users", key=tenant.key)
    shown = next(u for u in listed if u["email"] == invited)
    assert ("member", False) == (shown["role"], shown["disabled"])

    # A viewer made with a password signs in at once; deleting them ends their session.
    viewer = _email()
    await form.locator("input[name=email]").fill(viewer)
    await form.locator("select[name=role]").select_option("viewer")
    await form.locator("input[name=password]").fill(PASSWORD)
    await form.locator("button").click()
    await expect(page.locator("#added-user")).to_have_text(f"{viewer} can sign in now.")
    status, tokens = await gateway.call(
        "POST", "/auth/login", json={"email": viewer, "password": PASSWORD}
    )
    assert 200 == status, tokens
    viewer_token = {"Authorization": f"Bearer {tokens['access_token']}"}
    assert 200 == (await gateway.call("GET", "/account", headers=viewer_token))[0]
    page.once("dialog", lambda dialog: dialog.accept())
    await page.locator(f'#users tr[data-user="{viewer}"] button', has_text="Delete").click()
    await expect(page.locator(f'#users tr[data-user="{viewer}"]')).to_have_count(0)
    assert 401 == (await gateway.call("GET", "/account", headers=viewer_token))[0]

    # Signing out ends the session: its access token answers 401 at once.
    access = (await _session(page))["access"]
    await page.click("#sign-out")
    await expect(page.locator("#password-sign-in")).to_be_visible()
    await expect(page.locator("#nav")).to_be_hidden()
    assert None is await page.evaluate("sessionStorage.getItem('lanegate.session')")

    async def signed_out() -> bool:
        headers = {"Authorization": f"Bearer {access}"}
        return 401 == (await gateway.call("GET", "/account", headers=headers))[0]

    await eventually(signed_out)

    # The invited member sets a password, signs in, and has neither keys nor users.
    await page.click("#invitation summary")
    accept = page.locator("#accept-invitation")
    await accept.locator("input[name=token]").fill(token)
    await accept.locator("input[name=password]").fill(PASSWORD)
    await accept.locator("button").click()
    await expect(page.locator("#accepted")).to_contain_text(f"Password set for {invited}")
    await _sign_in(page, gateway, invited)
    await expect(page.locator("h1")).to_have_text("Account")
    await expect(page.locator("#signed-in-as")).to_have_text(f"{invited} (member)")
    await expect(page.locator("nav a[href='#/account']")).to_be_visible()
    await expect(page.locator("nav a[href='#/keys']")).to_be_hidden()
    await expect(page.locator("nav a[href='#/users']")).to_be_hidden()
    await page.goto(gateway.api + "/console#/users")
    await expect(page.locator("#forbidden")).to_be_visible()
    await expect(page.locator("#view .errors[role=alert]")).to_contain_text(
        "Only an admin (or a key"
    )
    await shot(page, "23-member-no-users")


async def test_an_expired_access_token_is_refreshed_and_a_dead_session_signs_out(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    page, _ = await _new_admin_signed_in(gateway, browser, {"width": 390, "height": 844})
    await expect(page.locator("#usage-chart")).to_be_visible()
    await shot(page, "24-account-phone")
    first = await _session(page)

    # A token the API calls expired, while the console believes it fresh: the 401 refreshes.
    claims = jwt.decode(first["access"], options={"verify_signature": False})
    past = datetime.now(UTC) - timedelta(minutes=20)
    expired = jwt.encode(
        claims | {"iat": past, "exp": past + timedelta(minutes=15)},
        Keyring(SECRET_KEY).derived_keys("lanegate access tokens")[0],
        algorithm="HS256",
        headers={"kid": jwt.get_unverified_header(first["access"])["kid"]},
    )
    status, body = await gateway.call(
        "GET", "/account", headers={"Authorization": f"Bearer {expired}"}
    )
    assert (401, "Access token expired") == (status, body["error"])
    await _put_session(page, first | {"access": expired})
    await page.click("nav >> text=Keys")
    await expect(page.locator("h1")).to_have_text("API keys")
    await expect(page.locator("#keys tbody tr")).to_have_count(1)  # the tenant's first key
    await shot(page, "25-keys-phone")
    second = await _session(page)
    assert expired != second["access"] and first["refresh"] != second["refresh"]
    # The spent refresh token is refused (its session with it: the console's next one too).
    status, _ = await gateway.call(
        "POST", "/auth/refresh", json={"refresh_token": first["refresh"]}
    )
    assert 401 == status

    # A session ended elsewhere: the refresh fails and the console asks to sign in again.
    await page.click("nav >> text=Account")
    await expect(page.locator("#password-sign-in")).to_be_visible()
    assert None is await page.evaluate("sessionStorage.getItem('lanegate.session')")
    await shot(page, "26-signed-out-after-refresh-failed")


async def test_a_token_about_to_expire_is_refreshed_before_it_is_sent(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    page, email = await _new_admin_signed_in(gateway, browser)
    first = await _session(page)

    await _put_session(page, first | {"expiresAt": 0})
    await page.click("nav >> text=Users")
    me = page.locator(f'#users tr[data-user="{email}"]')
    await expect(me).to_contain_text("(you)")
    await expect(me.locator("button")).to_have_count(0)  # no disabling or deleting oneself
    second = await _session(page)
    # A new refresh token (the access token may read the same within one second).
    assert first["refresh"] != second["refresh"] and second["expiresAt"] > 0


async def test_a_wrong_password_shows_the_error_and_throttling_the_wait(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    tenant_id, _ = await gateway.tenant()
    email = await _first_admin(gateway, tenant_id)
    page = await browser.new_page()
    await _sign_in(page, gateway, email, "not the password")
    errors = page.locator("#password-sign-in .errors")
    await expect(errors).to_have_text("Invalid e-mail or password")
    assert None is await page.evaluate("sessionStorage.getItem('lanegate.session')")
    for _ in range(9):
        wrong = {"email": email, "password": "not the password"}
        assert 401 == (await gateway.call("POST", "/auth/login", json=wrong))[0]

    await page.locator("#password-sign-in input[name=password]").fill(PASSWORD)
    await page.locator("#password-sign-in button").click()
    await expect(errors).to_contain_text("Too many failed sign-ins")
    await expect(errors).to_contain_text(" s.")
    await shot(page, "27-sign-in-throttled")


async def test_a_key_without_account_read_sees_why_the_account_page_is_empty(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    _, key = await gateway.tenant()
    status, narrow = await gateway.call(
        "POST", "/account/keys", key=key, json={"name": "reads", "scopes": ["instances:read"]}
    )
    assert 201 == status, narrow
    page = await browser.new_page()
    await page.goto(gateway.api + "/console")
    await page.fill("input[name=apikey]", narrow["apiKey"])
    await page.click("#sign-in button")
    await expect(page.locator("h1")).to_have_text("Instances")
    await expect(page.locator("nav a[href='#/keys']")).to_be_hidden()
    await expect(page.locator("nav a[href='#/users']")).to_be_hidden()
    await page.click("nav >> text=Account")
    await expect(page.locator("#forbidden")).to_be_visible()
    await expect(page.locator("#view .errors[role=alert]")).to_contain_text("account:read")

    # The tenant's first key holds every scope: it sees keys and users.
    await page.click("#sign-out")
    await page.fill("input[name=apikey]", key)
    await page.click("#sign-in button")
    await expect(page.locator("h1")).to_have_text("Instances")
    await expect(page.locator("nav a[href='#/keys']")).to_be_visible()
    await page.click("nav >> text=Users")
    await expect(page.locator("h1")).to_have_text("Users")


async def test_the_operator_page_in_the_same_tab_uses_the_operator_key_not_the_session(
    gateway: Gateway,
    browser: Browser,  # noqa: F811
) -> None:
    page, _ = await _new_admin_signed_in(gateway, browser)
    signed_in = await _session(page)

    await page.goto(gateway.api + "/console/admin")
    await page.fill("input[name=apikey]", gateway.admin_key)
    await page.click("#sign-in button")
    await expect(page.locator("h1")).to_have_text("Operator view")
    await expect(page.locator("#tenants")).to_be_visible()
    # Signing out of the operator page leaves the tenant user's session as it was.
    await page.click("#sign-out")
    assert signed_in == await _session(page)
