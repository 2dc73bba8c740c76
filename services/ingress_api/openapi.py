"""`/openapi.json` (OpenAPI 3.1) and `/docs`, both generated from the declared endpoints."""

import html
import json
import re
from typing import Any, Literal

from aiohttp import web
from pydantic import BaseModel, TypeAdapter

from ingress_api.registry import API, Endpoint
from ingress_api.schemas.error_bodies import ErrorBody, ValidationErrorBody
from lanegate import __version__
from lanegate.webhook_payloads import WEBHOOKS

REF = "#/components/schemas/{model}"
SECURITY: dict[str, list[dict[str, list[str]]]] = {
    "tenant": [{"apikey": []}, {"xApiKey": []}, {"bearer": []}],
    "admin": [{"operatorKey": []}],
    "none": [],
}
ERROR_TEXT = {
    400: "Invalid input; `issues` lists each bad field",
    401: "Missing or invalid API key",
    403: "No access to this resource (another tenant's, or a scope the key lacks)",
    404: "Not found",
    409: "Already exists",
    413: "Request body too large",
    415: "The body must be sent as application/json",
    422: "Well-formed but not allowed now",
    429: "Rate limited; see Retry-After",
    500: "WHATSAPP_API_ERROR: Meta failed the template request (its message is in `error`)",
    502: "The WhatsApp provider failed",
    503: "A dependency is unavailable; retry shortly",
    504: "The WhatsApp provider did not answer in time",
}


class _Schemas:
    """Collects component schemas while turning types into `$ref`s."""

    def __init__(self) -> None:
        self.components: dict[str, Any] = {}

    def of(self, kind: Any, mode: Literal["validation", "serialization"]) -> dict[str, Any]:
        schema = TypeAdapter(kind).json_schema(ref_template=REF, mode=mode)
        self.components.update(schema.pop("$defs", {}))
        if isinstance(kind, type) and issubclass(kind, BaseModel) and "properties" in schema:
            name = kind.__name__
            self.components[name] = schema
            return {"$ref": REF.format(model=name)}
        return schema


def _content(schema: dict[str, Any], media: str = "application/json") -> dict[str, Any]:
    return {media: {"schema": schema}}


def implied_errors(endpoint: Endpoint) -> set[int]:
    """The endpoint's declared errors plus those its auth and body always make possible."""
    errors = set(endpoint.errors)
    if endpoint.body is not None:
        errors |= {400, 413, 415}
    if endpoint.auth != "none":
        errors.add(401)
    if endpoint.auth == "tenant":
        errors.add(429)
    if endpoint.scope:
        errors.add(403)
    return errors


def _operation(endpoint: Endpoint, schemas: _Schemas) -> dict[str, Any]:
    operation: dict[str, Any] = {
        "operationId": endpoint.handler.__name__,
        "summary": endpoint.summary,
        "tags": [endpoint.tag],
        "security": SECURITY[endpoint.auth],
    }
    if endpoint.scope:
        operation["description"] = f"Needs the `{endpoint.scope}` scope when the key is scoped."
    parameters = [
        {"name": name, "in": "path", "required": True, "schema": {"type": "string", "minLength": 1}}
        for name in re.findall(r"{(\w+)}", endpoint.path)
    ]
    if endpoint.query is not None:
        for name, field in endpoint.query.model_fields.items():
            schema = TypeAdapter(field.annotation or str).json_schema(ref_template=REF)
            parameters.append(
                {
                    "name": field.alias or name,
                    "in": "query",
                    "required": field.is_required(),
                    "schema": schema,
                }
            )
    if parameters:
        operation["parameters"] = parameters
    if endpoint.body is not None:
        body = schemas.of(endpoint.body, "validation")
        operation["requestBody"] = {"required": True, "content": _content(body)}
    if endpoint.response is not None:
        answer = _content(schemas.of(endpoint.response, "serialization"), endpoint.media)
    elif endpoint.media == "application/json":
        answer = _content({"type": "object"})
    else:
        answer = _content({"type": "string"}, endpoint.media)
    responses: dict[str, Any] = {
        str(status): {"description": "OK", "content": answer}
        for status in (endpoint.status, *endpoint.other_ok_statuses)
    }
    for status in sorted(implied_errors(endpoint)):
        model: type[BaseModel] = ValidationErrorBody if status == 400 else ErrorBody
        if endpoint.error_shape is not None:
            model = endpoint.error_shape.model
        responses[str(status)] = {
            "description": ERROR_TEXT.get(status, "Error"),
            "content": _content(schemas.of(model, "serialization")),
        }
    operation["responses"] = responses
    return operation


def document() -> dict[str, Any]:
    """The whole OpenAPI 3.1 document of the tenant and operator API."""
    schemas = _Schemas()
    paths: dict[str, dict[str, Any]] = {}
    for endpoint in API.endpoints:
        paths.setdefault(endpoint.path, {})[endpoint.method.lower()] = _operation(endpoint, schemas)
    webhooks = {
        name: {
            "post": {
                "summary": f"`{name}` event sent to the instance's webhook URL",
                "description": (
                    "Signed with `x-gateway-signature` (hex HMAC-SHA256 of the raw body with the "
                    "instance's webhookSecret) and the Standard Webhooks headers `webhook-id`, "
                    "`webhook-timestamp`, `webhook-signature`."
                ),
                "requestBody": {"content": _content(schemas.of(model, "serialization"))},
                "responses": {"2XX": {"description": "Received; anything else is retried"}},
            }
        }
        for name, model in WEBHOOKS.items()
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "lanegate",
            "version": __version__,
            "description": "WhatsApp gateway: instances, anti-ban lanes, signed webhooks.",
        },
        "paths": paths,
        "webhooks": webhooks,
        "components": {
            "schemas": dict(sorted(schemas.components.items())),
            "securitySchemes": {
                "apikey": {"type": "apiKey", "in": "header", "name": "apikey"},
                "xApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
                "bearer": {"type": "http", "scheme": "bearer"},
                "operatorKey": {
                    "type": "apiKey",
                    "in": "header",
                    "name": "apikey",
                    "description": "The operator key (LANEGATE_ADMIN_KEY).",
                },
            },
        },
    }


OPENAPI = web.AppKey("openapi", bytes)


def _page(doc: dict[str, Any]) -> str:
    rows = []
    for path, operations in doc["paths"].items():
        for method, op in operations.items():
            schema = op.get("requestBody", {}).get("content", {}).get("application/json", {})
            codes = ", ".join(op["responses"])
            rows.append(
                f"<details><summary><code>{method.upper()} {html.escape(path)}</code> "
                f"{html.escape(op['summary'])}</summary>"
                f"<p>Answers: {codes}. {html.escape(op.get('description', ''))}</p>"
                + (
                    f"<pre>{html.escape(json.dumps(schema['schema'], indent=2))}</pre>"
                    if schema
                    else ""
                )
                + "</details>"
            )
    hooks = "".join(f"<li><code>{html.escape(name)}</code></li>" for name in doc["webhooks"])
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width">
<title>lanegate API</title>
<style>
body{{font:15px/1.5 system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem}}
details{{border-bottom:1px solid #ddd;padding:.4rem 0}}
pre{{background:#f6f6f6;padding:.6rem;overflow:auto}}
</style>
</head><body><h1>lanegate API {html.escape(doc["info"]["version"])}</h1>
<p>The machine-readable description is <a href="/openapi.json">/openapi.json</a>. Schemas are
under <code>components.schemas</code> there.</p>
{"".join(rows)}
<h2>Webhooks</h2><ul>{hooks}</ul></body></html>"""


@API.get("/openapi.json", summary="This API's OpenAPI 3.1 description", tag="docs", auth="none")
async def openapi_json(request: web.Request) -> web.Response:
    return web.Response(body=request.app[OPENAPI], content_type="application/json")


@API.get(
    "/docs", summary="A browsable page of this API", tag="docs", auth="none", media="text/html"
)
async def docs(request: web.Request) -> web.Response:
    return web.Response(text=_page(json.loads(request.app[OPENAPI])), content_type="text/html")


def install(app: web.Application) -> None:
    """Render the document once, when the app is built."""
    app[OPENAPI] = json.dumps(document()).encode()
