"""`make docs-check`: the relative links and shell commands in README.md and docs/ all work."""

import importlib.util
import json
import re
import shlex
import sys
from collections.abc import Iterator
from pathlib import Path

import click

from operator_cli.main import cli

REPO = Path(__file__).resolve().parents[1]
LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
FENCE = re.compile(r"^\s*(```|~~~)\s*([\w-]*)")
SHELL_BLOCKS = {"bash", "sh", "shell", "console"}
MAKE_RULE = re.compile(r"^([A-Za-z0-9_.-]+(?: +[A-Za-z0-9_.-]+)*) *:(?!=)", re.MULTILINE)
ASSIGNMENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*=")
PYTHONS = {"python", "python3", ".venv/bin/python"}
# Commands a reader may be shown besides make, curl and python modules.
OTHER_COMMANDS = {"docker", "kubectl", "pip", "npm", "git", "cd", "export", "rabbitmq-diagnostics"}
CURL_FLAGS_WITH_VALUE = {"-X", "--request", "-H", "--header", "-d", "--data", "--data-raw"}


def documents(repo: Path) -> list[Path]:
    """README.md and every Markdown file under docs/."""
    return [repo / "README.md", *sorted((repo / "docs").glob("*.md"))]


def blocks(text: str) -> Iterator[tuple[str, int, list[str]]]:
    """Each fenced code block as (language, first line number, lines)."""
    language, start = "", 0
    lines: list[str] = []
    inside = False
    for number, line in enumerate(text.splitlines(), 1):
        fence = FENCE.match(line)
        if fence and not inside:
            inside, language, start, lines = True, fence.group(2).lower(), number + 1, []
        elif fence and inside:
            inside = False
            yield language, start, lines
        elif inside:
            lines.append(line)


def prose(text: str) -> str:
    """The text with every fenced code block blanked out (line numbers kept)."""
    lines = text.splitlines()
    for _, start, body in blocks(text):
        for n in range(start - 1, start - 1 + len(body)):
            lines[n] = ""
    return "\n".join(lines)


def anchors(text: str) -> set[str]:
    """The #anchors GitHub makes for the headings of a Markdown text."""
    seen: dict[str, int] = {}
    found = set()
    for line in prose(text).splitlines():
        heading = re.match(r"^#{1,6}\s+(.*?)\s*#*\s*$", line)
        if not heading:
            continue
        slug = re.sub(r"[^\w\- ]", "", heading.group(1).strip().lower()).replace(" ", "-")
        count = seen.get(slug, 0)
        seen[slug] = count + 1
        found.add(slug if count == 0 else f"{slug}-{count}")
    return found


def link_errors(document: Path) -> list[str]:
    """Relative links of `document` whose file or #anchor does not exist."""
    errors = []
    text = document.read_text()
    for number, line in enumerate(prose(text).splitlines(), 1):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # http:, https:, mailto: and the like
            path, _, anchor = target.partition("#")
            file = (document.parent / path).resolve() if path else document
            where = f"{document.name}:{number}: {target}"
            if not file.exists():
                errors.append(f"{where}: no such file")
            elif anchor and file.suffix == ".md" and anchor not in anchors(file.read_text()):
                errors.append(f"{where}: no heading with this anchor")
    return errors


def commands(language: str, lines: list[str]) -> Iterator[str]:
    """The commands of one shell block: continuations joined, console output skipped."""
    pending = ""
    for line in lines:
        if language == "console" and not pending:
            if not line.startswith("$ "):
                continue
            line = line[2:]
        if line.rstrip().endswith("\\"):
            pending += line.rstrip()[:-1] + " "
            continue
        command = (pending + line).strip()
        pending = ""
        if command and not command.startswith("#"):
            yield command


def command_error(command: str, repo: Path) -> str | None:
    """Why `command` is not one a reader can run here, or None."""
    try:
        lexer = shlex.shlex(command, posix=True, punctuation_chars=";&|")
        lexer.whitespace_split = True
        lexer.commenters = "#"
        words = list(lexer)
    except ValueError as e:
        return f"cannot be parsed ({e})"
    segments: list[list[str]] = [[]]
    for word in words:
        if word in {"&&", "||", ";", "|"}:
            segments.append([])
        else:
            segments[-1].append(word)
    for segment in segments:
        while segment and ASSIGNMENT.match(segment[0]):
            segment = segment[1:]
        if not segment:
            return "no command"
        error = _word_error(segment, repo)
        if error:
            return error
    return None


def _word_error(words: list[str], repo: Path) -> str | None:
    program, args = words[0], words[1:]
    if program == "make":
        rules = MAKE_RULE.findall((repo / "Makefile").read_text())
        targets = {target for rule in rules for target in rule.split()}
        unknown = [a for a in args if not a.startswith("-") and "=" not in a and a not in targets]
        return f"no make target {', '.join(unknown)}" if unknown else None
    if program in PYTHONS:
        if len(args) < 2 or args[0] != "-m":
            return f"{program} without -m <module>"
        return None if _module_exists(args[1], repo) else f"no module {args[1]}"
    if program == "curl":
        return _curl_error(args)
    if program == "lanegate":
        return _lanegate_error(args)
    return None if program in OTHER_COMMANDS else f"unknown command {program}"


def _lanegate_error(args: list[str]) -> str | None:
    """Why `lanegate <args>` names no command of the operator CLI, or None."""
    command: click.Command = cli
    for word in args:
        if word.startswith("-") or not isinstance(command, click.Group):
            break
        found = command.get_command(click.Context(command), word)
        if found is None:
            return f"no lanegate command {word}"
        command = found
    return None if not isinstance(command, click.Group) else "lanegate without a command"


def _module_exists(name: str, repo: Path) -> bool:
    if str(repo) not in sys.path:
        sys.path.insert(0, str(repo))
    try:
        return importlib.util.find_spec(name) is not None
    except ModuleNotFoundError:
        return False


def _curl_error(args: list[str]) -> str | None:
    urls = [a for a in args if re.match(r"^https?://[^\s/]+", a)]
    if len(urls) != 1:
        return "curl needs exactly one http(s) URL"
    values = dict(zip(args, [*args[1:], ""], strict=True))
    for i, arg in enumerate(args):
        if arg in CURL_FLAGS_WITH_VALUE and i + 1 == len(args):
            return f"curl {arg} without a value"
        if arg in {"-H", "--header"} and ":" not in args[i + 1]:
            return f"curl header {args[i + 1]!r} has no colon"
    method = values.get("-X") or values.get("--request")
    if method is not None and method not in {"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"}:
        return f"curl method {method!r}"
    data = next((values[f] for f in ("-d", "--data", "--data-raw") if f in values), None)
    headers = " ".join(args[i + 1].lower() for i, a in enumerate(args) if a in {"-H", "--header"})
    if data is not None and "application/json" in headers:
        try:
            json.loads(data)
        except ValueError:
            return f"curl body is not JSON: {data}"
    return None


# A command shown inline, in the prose or a table: what a reader copies as often as a block.
# (`make` alone, or a bare `python`, is a word in a sentence, not a command.)
INLINE_COMMAND = re.compile(
    r"`((?:[A-Za-z_][A-Za-z0-9_]*=[^`\s]+ +)*(?:make|python3?|\.venv/bin/python) [^`]+)`"
)
# A value left for the reader to choose, as in `LANEGATE_TEST_STORE=<engine> make bench`.
CHOSEN_VALUE = re.compile(r"=<[^>\s]+>")


def inline_commands(text: str) -> Iterator[tuple[int, str]]:
    """Each command shown in an inline code span outside the blocks, with its line number;
    a value left to choose counts as given, and any other `<placeholder>` makes a pattern,
    not a command."""
    for number, line in enumerate(prose(text).splitlines(), 1):
        for found in INLINE_COMMAND.finditer(line):
            command = CHOSEN_VALUE.sub("=chosen", found.group(1))
            if "<" not in command:
                yield number, command


def check(repo: Path) -> list[str]:
    """Every problem found in the repository's documents."""
    errors = []
    for document in documents(repo):
        errors += link_errors(document)
        for number, command in inline_commands(document.read_text()):
            error = command_error(command, repo)
            if error:
                errors.append(f"{document.name}:{number}: {command}: {error}")
        for language, start, lines in blocks(document.read_text()):
            if language not in SHELL_BLOCKS:
                continue
            for command in commands(language, lines):
                error = command_error(command, repo)
                if error:
                    errors.append(f"{document.name} (block at line {start}): {command}: {error}")
    return errors


def main() -> None:
    errors = check(REPO)
    for error in errors:
        print(error, file=sys.stderr)
    checked = ", ".join(str(d.relative_to(REPO)) for d in documents(REPO))
    print(f"docs-check: {len(errors)} problem(s) in {checked}")
    sys.exit(1 if errors else 0)


if __name__ == "__main__":
    main()
