"""Meta's OpenAPI description (specs/, MIT licensed) as JSON Schema validators.

The file composes message types as `allOf: [BaseMessageProperties, {...,
additionalProperties: false}]`, which plain JSON Schema reads as "no base
property allowed"; the intended meaning is `unevaluatedProperties: false` on
the whole, so that is what the loader rewrites. `biz_opaque_callback_data`,
documented by Meta for sends but missing from the file's base properties, is
added there. A template button's `index` pattern in the file
(`^[2-6, 11-14]$`, a character class) refuses the "0" of its own example;
Meta documents 0-9, so that is what it checks.
"""

import functools
from pathlib import Path
from typing import Any

import jsonschema
import referencing
import yaml
from referencing.jsonschema import DRAFT202012

SPEC = Path(__file__).parent / "specs" / "meta-business-messaging-api_v23.0.yaml"


def _close_all_of(node: Any) -> None:
    if isinstance(node, dict):
        members = node.get("allOf")
        if isinstance(members, list):
            for member in members:
                if isinstance(member, dict) and member.get("additionalProperties") is False:
                    del member["additionalProperties"]
                    node["unevaluatedProperties"] = False
        for value in node.values():
            _close_all_of(value)
    elif isinstance(node, list):
        for value in node:
            _close_all_of(value)


@functools.cache
def _registry() -> referencing.Registry[Any]:
    with SPEC.open() as f:
        spec = yaml.load(f, Loader=yaml.CSafeLoader)
    _close_all_of(spec["components"]["schemas"])
    base = spec["components"]["schemas"]["BaseMessageProperties"]["properties"]
    base["biz_opaque_callback_data"] = {"type": "string", "maxLength": 512}
    schemas = spec["components"]["schemas"]
    schemas["TemplateComponent"]["properties"]["index"]["pattern"] = "^[0-9]$"
    for member in schemas["ButtonComponent"]["allOf"]:
        if "index" in member.get("properties", {}):
            member["properties"]["index"]["pattern"] = "^[0-9]$"
    resource: referencing.Resource[Any] = DRAFT202012.create_resource(spec)
    registry: referencing.Registry[Any] = referencing.Registry().with_resource("meta", resource)
    return registry


@functools.cache
def validator(schema_name: str) -> jsonschema.Draft202012Validator:
    """A validator for one of the file's `components.schemas`."""
    return jsonschema.Draft202012Validator(
        {"$ref": f"meta#/components/schemas/{schema_name}"}, registry=_registry()
    )


def problems(schema_name: str, instance: Any) -> list[str]:
    """Every way `instance` breaks the named schema (empty when it conforms)."""
    found = []
    for error in validator(schema_name).iter_errors(instance):
        found.append(error.message)
        found += [f"  {sub.message}" for sub in (error.context or [])[:6]]
    return found
