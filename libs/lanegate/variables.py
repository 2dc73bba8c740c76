"""Per-recipient variables in a message text: `{{name}}`, `{{phone}}` and `{{fields.<key>}}`
are filled from the recipient's contact at send time, before spintax is resolved;
`{{name|Cliente}}` gives the text used when the contact has no such value. An e-mail's
subject and html take them too (`{{phone}}` there is the address)."""

import html
import re
from collections.abc import Callable, Mapping
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


# The content fields holding a message's text, in the order `text_of` reads them.
TEXT_FIELDS = ("text", "body", "caption")


def one_line(value: str) -> str:
    """`value` with its line breaks turned into spaces: a header holds one line."""
    return " ".join(value.splitlines())


# The e-mail parts besides the text that variables are filled in, each with how a value is
# written into it: the subject is a header (one line), html gets values escaped, so a
# contact's name cannot add headers or markup.
EMAIL_PARTS: dict[str, Callable[[str], str]] = {"subject": one_line, "html": html.escape}


def templates_of(content: Mapping[str, Any]) -> dict[str, str]:
    """Every part of a message's content that variables fill, by content field."""
    parts = {f: v for f in EMAIL_PARTS if isinstance(v := content.get(f), str)}
    text = text_of(content)
    field = next((f for f in TEXT_FIELDS if f in content), None)
    return ({field: text} if text is not None and field is not None else {}) | parts


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


def fill(
    text: str,
    identifier: str,
    contact: Mapping[str, Any] | None,
    written: Callable[[str], str] = str,
) -> str:
    """`text` with its variables replaced by the contact's values (passed through `written`),
    else their fallback, else nothing; the result is still spintax (values are escaped)."""

    def replace(match: re.Match[str]) -> str:
        value = value_of(match[1], identifier, contact)
        if value is not None:
            return _SPINTAX_SYNTAX.sub(r"\\\1", written(value))
        return match[2] or ""  # the fallback is written as spintax already

    return _VARIABLE.sub(replace, text)


def fill_email_parts(
    content: Mapping[str, Any], identifier: str, contact: Mapping[str, Any] | None
) -> dict[str, Any]:
    """`content` with the variables of its subject and html filled (still spintax)."""
    return dict(content) | {
        field: fill(content[field], identifier, contact, written)
        for field, written in EMAIL_PARTS.items()
        if isinstance(content.get(field), str)
    }
