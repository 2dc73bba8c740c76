"""Operator endpoints: plans, the limits tenants are sold."""

from typing import Any

from aiohttp import web
from pymongo.errors import DuplicateKeyError

from ingress_api.accounts.limits import LIMIT_FIELDS
from ingress_api.auth import KEYS, require_admin
from ingress_api.registry import API
from ingress_api.requests import read_json
from ingress_api.schemas.accounts import PlanCreate, PlanUpdate, PlanView
from lanegate.errors import Conflict, NotFound
from lanegate.events import utcnow
from lanegate.service import STORE
from lanegate.store import Document
from lanegate.timestamps import iso_utc


def plan_view(plan: Document) -> dict[str, Any]:
    return {
        "id": plan["_id"],
        "name": plan["name"],
        "createdAt": iso_utc(plan["createdAt"]),
        **{field: plan.get(field) for field in LIMIT_FIELDS},
    }


@API.post(
    "/admin/plans",
    summary="Create a plan: limits its tenants get unless they have their own",
    tag="admin",
    auth="admin",
    body=PlanCreate,
    response=PlanView,
    status=201,
    errors=(400, 401, 409),
)
async def create_plan(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request, PlanCreate)
    plan = {"_id": body.id, "createdAt": utcnow()} | body.model_dump(exclude={"id"})
    try:
        await request.app[STORE].plans.insert_one(plan)
    except DuplicateKeyError as e:
        raise Conflict(f"Plan {body.id} already exists") from e
    return web.json_response(plan_view(plan), status=201)


@API.get(
    "/admin/plans",
    summary="Every plan",
    tag="admin",
    auth="admin",
    response=list[PlanView],
    errors=(401,),
)
async def list_plans(request: web.Request) -> web.Response:
    require_admin(request)
    plans = await request.app[STORE].plans.find().sort("_id", 1).to_list(None)
    return web.json_response([plan_view(p) for p in plans])


@API.patch(
    "/admin/plans/{id}",
    summary="Rename a plan or change its limits (null: no longer set); its tenants get them at "
    "once",
    tag="admin",
    auth="admin",
    body=PlanUpdate,
    response=PlanView,
    errors=(400, 401, 404),
)
async def update_plan(request: web.Request) -> web.Response:
    require_admin(request)
    body = await read_json(request, PlanUpdate)
    store, plan_id = request.app[STORE], request.match_info["id"]
    changes = body.model_dump(exclude_none=True)
    changes |= {
        f: None for f in set(LIMIT_FIELDS) & body.model_fields_set if getattr(body, f) is None
    }
    plan = await store.plans.find_one({"_id": plan_id})
    if plan is None:
        raise NotFound(f"Plan {plan_id} not found")
    if changes:
        await store.plans.update_one({"_id": plan_id}, {"$set": changes})
        request.app[KEYS].forget_plan(plan_id)
    return web.json_response(plan_view(plan | changes))
