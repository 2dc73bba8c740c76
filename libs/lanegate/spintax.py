"""Spintax: `{a|b|{c|d}}` picks one option per group, nested, at send time.
A backslash makes the next character literal (`\\{`, `\\}`, `\\|`, `\\\\`)."""

import random
from dataclasses import dataclass

# Real templates nest two or three levels; deeper is a mistake or an attack on the parser.
MAX_DEPTH = 20


class SpintaxError(ValueError):
    """Raised when braces do not balance; `position` is the offending character's index."""

    def __init__(self, message: str, position: int) -> None:
        super().__init__(f"{message} at position {position}")
        self.position = position


@dataclass(frozen=True)
class _Choice:
    options: tuple["_Node", ...]


_Node = tuple["str | _Choice", ...]


# Parsing and rendering keep their own stacks rather than recursing, so no nesting can
# exhaust Python's; accepted text is held to MAX_DEPTH levels.
def _parse(text: str, max_depth: int | None = None) -> _Node:
    stack: list[tuple[list[_Node], list[str | _Choice], int]] = []
    options: list[_Node] = []
    current: list[str | _Choice] = []
    literal: list[str] = []

    def flush() -> None:
        if literal:
            current.append("".join(literal))
            literal.clear()

    i = 0
    while i < len(text):
        char = text[i]
        if char == "\\":
            if i + 1 >= len(text):
                raise SpintaxError("Dangling escape", i)
            literal.append(text[i + 1])
            i += 2
            continue
        if char == "{":
            flush()
            stack.append((options, current, i))
            if max_depth is not None and len(stack) > max_depth:
                raise SpintaxError(f"Nested deeper than {max_depth} levels", i)
            options, current = [], []
        elif char == "|" and stack:
            flush()
            options.append(tuple(current))
            current = []
        elif char == "}":
            if not stack:
                raise SpintaxError("Unmatched '}'", i)
            flush()
            options.append(tuple(current))
            choice = _Choice(tuple(options))
            options, current, _ = stack.pop()
            current.append(choice)
        else:
            literal.append(char)
        i += 1
    if stack:
        raise SpintaxError("Unclosed '{'", stack[-1][2])
    flush()
    return tuple(current)


def validate(text: str) -> None:
    """Raise SpintaxError when `text` is not well-formed spintax or nests over `MAX_DEPTH`."""
    _parse(text, MAX_DEPTH)


def _render(node: _Node, rng: random.Random) -> str:
    out: list[str] = []
    unfinished = [iter(node)]
    while unfinished:
        part = next(unfinished[-1], None)
        if part is None:
            unfinished.pop()
        elif isinstance(part, str):
            out.append(part)
        else:
            unfinished.append(iter(rng.choice(part.options)))
    return "".join(out)


def spin(text: str, rng: random.Random | None = None) -> str:
    """Resolve every choice in `text` at random and return the text to send."""
    return _render(_parse(text), rng or random.Random())


def variants(text: str) -> set[str]:
    """Every text `spin` can produce (for tests and previews of small templates)."""

    def expand(node: _Node) -> set[str]:
        results = {""}
        for part in node:
            if isinstance(part, str):
                results = {r + part for r in results}
            else:
                options = set().union(*(expand(o) for o in part.options))
                results = {r + o for r in results for o in options}
        return results

    return expand(_parse(text))
