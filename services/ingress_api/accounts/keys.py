"""Which scopes a key may give the keys it makes."""

from collections.abc import Collection

from lanegate.errors import InsufficientScope


def scopes_for_new_key(
    holder: Collection[str] | None, asked: Collection[str] | None
) -> list[str] | None:
    """The scopes a key made by a key holding `holder` (None: every scope) gets: what it asked
    for (none asked: the holder's own), when within the holder's; 403 otherwise."""
    scopes = sorted(set(asked)) if asked is not None else holder
    refuse_scopes_beyond(holder, scopes)
    return None if scopes is None else sorted(scopes)


def refuse_scopes_beyond(holder: Collection[str] | None, scopes: Collection[str] | None) -> None:
    """403 INSUFFICIENT_SCOPE when `scopes` (None: every scope) are not all within `holder`."""
    if holder is None:
        return
    if scopes is None:
        raise InsufficientScope(
            "Only a key with every scope can do this for a key with every scope"
        )
    beyond = sorted(set(scopes) - set(holder))
    if beyond:
        raise InsufficientScope(
            f"A key cannot reach beyond its own scopes; it lacks {', '.join(beyond)}"
        )
