"""Signing in with e-mail and password: tokens, refreshing, signing out, accepting invitations."""

from aiohttp import web

from ingress_api.accounts.login import log_in, log_out, refresh, sign_in
from ingress_api.accounts.passwords import hash_password
from ingress_api.accounts.users import invitation_hash, user_view
from ingress_api.registry import API
from ingress_api.requests import read_json
from ingress_api.schemas.accounts import (
    InvitationAccept,
    LoginBody,
    RefreshBody,
    SignedOut,
    Tokens,
    UserView,
)
from lanegate.errors import Unauthorized
from lanegate.service import STORE


@API.post(
    "/auth/login",
    summary="Sign in with e-mail and password: a 15-minute access token (use it as "
    "`Authorization: Bearer`) and a refresh token",
    tag="auth",
    auth="none",
    body=LoginBody,
    response=Tokens,
    errors=(400, 401, 429),
)
async def login(request: web.Request) -> web.Response:
    body = await read_json(request, LoginBody)
    return web.json_response(await log_in(sign_in(request), body.email, body.password))


@API.post(
    "/auth/refresh",
    summary="New tokens for a refresh token, which is spent (a second use ends its session)",
    tag="auth",
    auth="none",
    body=RefreshBody,
    response=Tokens,
    errors=(400, 401),
)
async def refresh_tokens(request: web.Request) -> web.Response:
    body = await read_json(request, RefreshBody)
    return web.json_response(await refresh(sign_in(request), body.refresh_token))


@API.post(
    "/auth/logout",
    summary="Sign out: the refresh token's session and its access tokens answer 401 from now on",
    tag="auth",
    auth="none",
    body=RefreshBody,
    response=SignedOut,
    errors=(400,),
)
async def logout(request: web.Request) -> web.Response:
    body = await read_json(request, RefreshBody)
    return web.json_response({"signedOut": await log_out(sign_in(request), body.refresh_token)})


@API.post(
    "/auth/accept",
    summary="Turn an invitation token into a password (at least 12 characters)",
    tag="auth",
    auth="none",
    body=InvitationAccept,
    response=UserView,
    errors=(400, 401),
)
async def accept_invitation(request: web.Request) -> web.Response:
    body = await read_json(request, InvitationAccept)
    user = await request.app[STORE].users.find_one_and_update(
        {"invitationHash": invitation_hash(body.token), "passwordHash": None},
        {"$set": {"passwordHash": hash_password(body.password), "invitationHash": None}},
    )
    if user is None:
        raise Unauthorized("Invalid or used invitation")
    return web.json_response(user_view(user | {"passwordHash": "set"}))
