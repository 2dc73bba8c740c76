"""WhatsApp message templates: stored form, API view, variables, and the components of a send."""

import re
import uuid
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import Any

from lanegate.store import Document
from lanegate.timestamps import iso_utc

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)\s*\}\}")
MEDIA_HEADERS = {"IMAGE": "image", "VIDEO": "video", "DOCUMENT": "document"}
BUTTON_PARAMETERS = {"QUICK_REPLY": ("quick_reply", "payload"), "URL": ("url", "text")}
_IDS = uuid.UUID("0b7e1f52-5d0c-4c4e-9a3f-6b2d8e1c7a90")

Issues = list[tuple[list[str | int], str]]


class TemplateMismatch(Exception):
    """Raised when a send's variables, header or buttons do not fit its template."""

    def __init__(self, issues: Issues) -> None:
        super().__init__("; ".join(text for _, text in issues))
        self.issues = issues


def template_id(instance_name: str, meta_id: str) -> str:
    """The gateway's stable id of one instance's copy of a Meta template."""
    return str(uuid.uuid5(_IDS, f"{instance_name}:{meta_id}"))


def _component(components: Sequence[Mapping[str, Any]], kind: str) -> Mapping[str, Any] | None:
    return next((c for c in components if str(c.get("type", "")).upper() == kind), None)


# A template's variables come from its BODY text: positional (`{{1}}`, `{{2}}`, ...) or named
# (`{{first_name}}`). A send is checked against the stored template before it is queued, and
# its parameters are built into Meta's `components` then, so provider-sender only passes them
# on.
def variables_of(components: Sequence[Mapping[str, Any]]) -> list[str]:
    """The BODY's variables: `["1", "2"]` in number order, or names in order of appearance."""
    body = _component(components, "BODY")
    found = list(dict.fromkeys(PLACEHOLDER.findall(str(body.get("text", "")) if body else "")))
    if found and all(name.isdigit() for name in found):
        return sorted(found, key=int)
    return found


def is_named(variables: Sequence[str]) -> bool:
    """True when the template's variables are names rather than numbers."""
    return any(not name.isdigit() for name in variables)


def quality_of(meta: Mapping[str, Any]) -> str | None:
    """Meta's quality score of a template (`GREEN`, `YELLOW`, `RED`, `UNKNOWN`)."""
    score = meta.get("quality_score")
    if isinstance(score, Mapping):
        value = score.get("score")
        return str(value) if value is not None else None
    return str(score) if score is not None else None


def stored(meta: Mapping[str, Any], instance: Document, synced_at: datetime) -> Document:
    """The fields a sync writes for one template Meta listed."""
    components = list(meta.get("components") or [])
    return {
        "tenantId": instance["tenantId"],
        "instanceName": instance["_id"],
        "wabaId": instance["providerConfig"]["wabaId"],
        "metaId": str(meta["id"]),
        "name": str(meta["name"]),
        "language": str(meta.get("language", "")),
        "category": meta.get("category"),
        "status": str(meta.get("status", "")),
        "components": components,
        "variables": variables_of(components),
        "qualityRating": quality_of(meta),
        "syncedAt": synced_at,
        "deleted": False,
        "deletedAt": None,
    }


def view(template: Document) -> dict[str, Any]:
    """A stored template as the API shows it (in the template API's field names)."""
    return {
        "id": template["_id"],
        "meta_template_id": template["metaId"],
        "name": template["name"],
        "language": template["language"],
        "category": template.get("category"),
        "status": template["status"],
        "whatsapp_instance_id": template["instanceName"],
        "variables": template.get("variables", []),
        "components": template.get("components", []),
        "quality_rating": template.get("qualityRating"),
        "synced_at": iso_utc(template.get("syncedAt")),
        "deleted": bool(template.get("deleted")),
    }


def listing_filter(
    tenant_id: str, instance_name: str | None, status: str | None, language: str | None
) -> dict[str, Any]:
    """The store filter of a templates listing: deleted templates only when asked for with
    `status=DELETED`."""
    where: dict[str, Any] = {"tenantId": tenant_id}
    if instance_name is not None:
        where["instanceName"] = instance_name
    where["status"] = status if status is not None else {"$ne": "DELETED"}
    if language is not None:
        where["language"] = language
    return where


def _values(template: Document, given: Sequence[str] | Mapping[str, str]) -> list[tuple[str, str]]:
    """The variables of a send as (name, value) pairs in the template's order."""
    expected: list[str] = list(template.get("variables", []))
    shown = ", ".join("{{" + name + "}}" for name in expected) or "none"
    if isinstance(given, Mapping):
        missing = [name for name in expected if name not in given]
        extra = [name for name in given if name not in expected]
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing {', '.join(missing)}")
            if extra:
                parts.append(f"unknown {', '.join(extra)}")
            raise TemplateMismatch(
                [
                    (
                        ["variables"],
                        f"Template {template['name']} takes {shown}: {'; '.join(parts)}",
                    )
                ]
            )
        return [(name, str(given[name])) for name in expected]
    if len(given) != len(expected):
        raise TemplateMismatch(
            [
                (
                    ["variables"],
                    f"Template {template['name']} takes {len(expected)} variable"
                    f"{'' if len(expected) == 1 else 's'} ({shown}); got {len(given)}",
                )
            ]
        )
    return list(zip(expected, (str(v) for v in given), strict=True))


def _header(template: Document, media: Mapping[str, Any] | None) -> list[dict[str, Any]]:
    header = _component(template.get("components", []), "HEADER")
    kind = MEDIA_HEADERS.get(str(header.get("format", "")).upper()) if header else None
    if kind is None:
        if media is not None:
            raise TemplateMismatch(
                [(["headerMedia"], f"Template {template['name']} has no media header")]
            )
        return []
    if media is None:
        raise TemplateMismatch(
            [(["headerMedia"], f"Template {template['name']} needs a {kind} header: give its url")]
        )
    if media.get("type") not in (None, kind):
        raise TemplateMismatch(
            [(["headerMedia", "type"], f"Template {template['name']}'s header is a {kind}")]
        )
    link: dict[str, Any] = {"link": str(media["url"])}
    if kind == "document" and media.get("filename"):
        link["filename"] = media["filename"]
    return [{"type": "header", "parameters": [{"type": kind, kind: link}]}]


def _buttons(template: Document, given: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    component = _component(template.get("components", []), "BUTTONS")
    defined = list(component.get("buttons", [])) if component else []
    built: list[dict[str, Any]] = []
    issues: Issues = []
    for position, button in enumerate(given):
        index = int(button["index"])
        if index >= len(defined):
            issues.append(
                (
                    ["buttons", position, "index"],
                    f"Template {template['name']} has {len(defined)} buttons; no button {index}",
                )
            )
            continue
        kind = str(defined[index].get("type", "")).upper()
        if kind not in BUTTON_PARAMETERS:
            issues.append((["buttons", position], f"Button {index} ({kind}) takes no parameter"))
            continue
        sub_type, field = BUTTON_PARAMETERS[kind]
        value = button.get(field)
        if not value:
            issues.append((["buttons", position, field], f"Button {index} ({kind}) needs {field}"))
            continue
        built.append(
            {
                "type": "button",
                "sub_type": sub_type,
                "index": str(index),
                "parameters": [{"type": field, field: str(value)}],
            }
        )
    given_indexes = {int(b["index"]) for b in given}
    for index, button in enumerate(defined):
        dynamic = str(button.get("type", "")).upper() == "URL" and PLACEHOLDER.search(
            str(button.get("url", ""))
        )
        if dynamic and index not in given_indexes:
            issues.append(
                (["buttons"], f"Button {index} (URL) has a variable: give its text in buttons")
            )
    if issues:
        raise TemplateMismatch(issues)
    return built


def send_components(
    template: Document,
    variables: Sequence[str] | Mapping[str, str],
    *,
    header_media: Mapping[str, Any] | None = None,
    buttons: Sequence[Mapping[str, Any]] = (),
) -> list[dict[str, Any]]:
    """Meta's `components` for sending `template`; raises TemplateMismatch naming what is wrong."""
    issues: Issues = []
    components: list[dict[str, Any]] = []
    parts: list[Callable[[], list[dict[str, Any]]]] = [
        lambda: _header(template, header_media),
        lambda: _body(template, variables),
        lambda: _buttons(template, buttons),
    ]
    for build in parts:
        try:
            components += build()
        except TemplateMismatch as e:
            issues += e.issues
    if issues:
        raise TemplateMismatch(issues)
    return components


def _body(template: Document, variables: Sequence[str] | Mapping[str, str]) -> list[dict[str, Any]]:
    pairs = _values(template, variables)
    if not pairs:
        return []
    named = is_named(template.get("variables", []))
    parameters = [
        {"type": "text", "text": value} | ({"parameter_name": name} if named else {})
        for name, value in pairs
    ]
    return [{"type": "body", "parameters": parameters}]


# The parameter types a BODY of a text template takes, as Meta documents them.
BODY_PARAMETER_TYPES = ("text", "currency", "date_time")


def check_components(template: Document, components: Sequence[Mapping[str, Any]]) -> None:
    """Raise TemplateMismatch unless Meta's `components`, given as they are to be sent, fit
    `template`: one BODY parameter per variable, a header only where it has one, buttons it
    defines."""
    defined = template.get("components", [])
    expected = len(template.get("variables", []))
    issues: Issues = []
    bodies = 0
    for position, component in enumerate(components):
        kind = str(component.get("type", "")).upper()
        parameters = list(component.get("parameters") or [])
        if kind == "BODY":
            bodies += 1
            if bodies > 1:
                issues.append((["components", position], "Give one body component"))
            elif len(parameters) != expected:
                issues.append(
                    (
                        ["components", position, "parameters"],
                        f"Template {template['name']} takes {expected} body parameter"
                        f"{'' if expected == 1 else 's'}; got {len(parameters)}",
                    )
                )
        elif kind == "HEADER":
            if _component(defined, "HEADER") is None:
                issues.append(
                    (["components", position], f"Template {template['name']} has no header")
                )
        elif kind == "BUTTON":
            buttons = _component(defined, "BUTTONS")
            count = len(buttons.get("buttons", [])) if buttons else 0
            index = str(component.get("index", ""))
            if not index.isdigit() or int(index) >= count:
                issues.append(
                    (
                        ["components", position, "index"],
                        f"Template {template['name']} has {count} buttons; no button {index}",
                    )
                )
    if expected and bodies == 0:
        issues.append(
            (
                ["components"],
                f"Template {template['name']} takes {expected} body parameter"
                f"{'' if expected == 1 else 's'}: give a body component",
            )
        )
    if issues:
        raise TemplateMismatch(issues)
