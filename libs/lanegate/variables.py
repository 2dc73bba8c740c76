"""Per-recipient variables in a message text: `{{name}}`, `{{phone}}` and `{{fields.<key>}}`
are filled from the recipient's contact at send time, before spintax is resolved;
`{{name|Cliente}}` gives the text used when the contact has no such value."""

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

# `{{name}}`, `{{ phone }}`, `{{fields.plan|basic}}`; a backslash before the first brace
# keeps it literal, as in spintax. Any other `{{...}}` is ordinary nested spintax.
_VARIABLE = re.compile(
    r"(?<!\\)\{\{\s*(name|phone|fields\.[A-Za-z0-9_-]{1,64})\s*(?:\|((?:[^{}|\\]|\\.)*))?\}\}"
)
# Characters spintax reads as syntax: a filled value is taken literally.
_SPINTAX_SYNTAX = re.compile(r"([\\{}|])")


@dataclass(frozen=True)
class Variable:
    """One variable as written: its key and its fallback (None when it has none)."""

    key: str
    fallback: str | None

    @property
    def written(self) -> str:
        return "{{" + self.key + "}}"


def text_of(content: Mapping[str, Any]) -> str | None:
    """The text, body or caption of a message's content: the part variables and spintax fill."""
    template = content.get("text", content.get("body", content.get("caption")))
    return template if isinstance(template, str) else None


def variables_in(text: str) -> list[Variable]:
    """The variables `text` uses, in order."""
    return [Variable(m[1], m[2]) for m in _VARIABLE.finditer(text)]


def value_of(key: str, identifier: str, contact: Mapping[str, Any] | None) -> str | None:
    """The contact's value for `key` (None when it has none); `phone` is the recipient's."""
    if key == "phone":
        return identifier
    if contact is None:
        return None
    if key == "name":
        value = contact.get("name")
    else:
        value = (contact.get("fields") or {}).get(key.removeprefix("fields."))
    return value if isinstance(value, str) and value else None


def unfilled(text: str, identifier: str, contact: Mapping[str, Any] | None) -> list[str]:
    """The variables of `text` without a fallback that the contact has no value for."""
    return [
        v.written
        for v in variables_in(text)
        if v.fallback is None and value_of(v.key, identifier, contact) is None
    ]


def fill(text: str, identifier: str, contact: Mapping[str, Any] | None) -> str:
    """`text` with its variables replaced by the contact's values, else their fallback, else
    nothing; the result is still spintax (values and fallbacks are escaped)."""

    def replace(match: re.Match[str]) -> str:
        value = value_of(match[1], identifier, contact)
        if value is not None:
            return _SPINTAX_SYNTAX.sub(r"\\\1", value)
        return match[2] or ""  # the fallback is written as spintax already

    return _VARIABLE.sub(replace, text)
