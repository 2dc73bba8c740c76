"""What each provider can do, as the instance objects advertise it."""

from dataclasses import dataclass


@dataclass(frozen=True)
class Capabilities:
    supportsTemplates: bool
    supportsButtons: bool
    hasWindowRestriction: bool
    supportsAttachments: bool


# cloud_api would need Meta's media upload for files; it sends media by link instead.
CAPABILITIES = {
    "sandbox": Capabilities(
        supportsTemplates=False,
        supportsButtons=False,
        hasWindowRestriction=False,
        supportsAttachments=True,
    ),
    "cloud_api": Capabilities(
        supportsTemplates=True,
        supportsButtons=True,
        hasWindowRestriction=True,
        supportsAttachments=False,
    ),
    "waha": Capabilities(
        supportsTemplates=False,
        supportsButtons=False,
        hasWindowRestriction=False,
        supportsAttachments=True,
    ),
}
