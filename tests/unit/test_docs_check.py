"""The docs check finds broken links and commands that cannot run, and passes this repository."""

from pathlib import Path

import pytest

from devtools.docs_check import REPO, anchors, check, command_error

FENCE = "```"


def _repo(tmp_path: Path, readme: str, **docs: str) -> Path:
    (tmp_path / "Makefile").write_text("STAMP := x\nrun: $(STAMP)\n\techo\ntest docs-check: run\n")
    (tmp_path / "README.md").write_text(readme)
    (tmp_path / "docs").mkdir()
    for name, text in docs.items():
        (tmp_path / "docs" / f"{name}.md").write_text(text)
    return tmp_path


def test_this_repositorys_readme_and_docs_pass() -> None:
    assert [] == check(REPO)


def test_links_to_files_and_headings_that_exist_pass(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        "# Top\n\n## Two words, one: comma\n\nSee [api](docs/api.md#the-api), [here](#top), "
        "[again](#two-words-one-comma), [web](https://example.com/#nothing) and [m](Makefile).\n",
        api="# The API\n\nBack to the [readme](../README.md#top).\n",
    )
    assert [] == check(repo)


def test_a_missing_file_and_a_missing_anchor_are_reported(tmp_path: Path) -> None:
    repo = _repo(
        tmp_path,
        "# Top\n\n[gone](docs/gone.md) and [nowhere](docs/api.md#nowhere)\n",
        api="# API\n",
    )
    assert [
        "README.md:3: docs/gone.md: no such file",
        "README.md:3: docs/api.md#nowhere: no heading with this anchor",
    ] == check(repo)


def test_headings_inside_code_blocks_make_no_anchor_and_repeats_are_numbered() -> None:
    text = f"# Notes\n\n{FENCE}sh\n# not a heading\n{FENCE}\n\n## Notes\n"
    assert {"notes", "notes-1"} == anchors(text)


def test_commands_in_shell_blocks_are_checked(tmp_path: Path) -> None:
    readme = (
        f"# Top\n\n{FENCE}sh\nmake run   # starts it\nmake deploy\n"
        f"LANEGATE_FAULT_SEED=1 make test\n.venv/bin/python -m devtools.nothing_here\n{FENCE}\n\n"
        f"{FENCE}console\n$ frobnicate --all\noutput that is not checked\n{FENCE}\n\n"
        f"{FENCE}python\nnot_a_shell_command()\n{FENCE}\n"
    )
    assert [
        "README.md (block at line 4): make deploy: no make target deploy",
        "README.md (block at line 4): .venv/bin/python -m devtools.nothing_here: "
        "no module devtools.nothing_here",
        "README.md (block at line 11): frobnicate --all: unknown command frobnicate",
    ] == check(_repo(tmp_path, readme))


def test_commands_shown_inline_are_checked_too(tmp_path: Path) -> None:
    readme = (
        "# Top\n\n| what | command |\n| --- | --- |\n"
        "| memory | `.venv/bin/python bench/memory.py` |\n\n"
        "Run `LANEGATE_TEST_STORE=ferretdb make deploy`, or `make run`; each service starts "
        "with `python -m <module>`, and `curl` is a word, not a command, as `python` is.\n"
        "Set `LANEGATE_X=1` and `make` it; `LANEGATE_TEST_STORE=<engine> make nothing` too.\n"
    )
    assert [
        "README.md:5: .venv/bin/python bench/memory.py: .venv/bin/python without -m <module>",
        "README.md:7: LANEGATE_TEST_STORE=ferretdb make deploy: no make target deploy",
        "README.md:8: LANEGATE_TEST_STORE=chosen make nothing: no make target nothing",
    ] == check(_repo(tmp_path, readme))


@pytest.mark.parametrize(
    ("command", "error"),
    [
        (
            "curl -X POST http://127.0.0.1:8080/message/text -H 'apikey: <key>' "
            '-H \'Content-Type: application/json\' -d \'{"to":"1","text":"{Hi|Hey}"}\'',
            None,
        ),
        ("curl http://127.0.0.1:8080/health && make run", None),
        (".venv/bin/python -m devtools.docs_check", None),
        ('curl -X POST http://127.0.0.1:8080/x -d \'{"a": 1', "cannot be parsed"),
        ("curl -X POST -H 'Content-Type: application/json' http://h/x -d '{a}'", "not JSON"),
        ("curl -X FETCH http://127.0.0.1:8080/x", "curl method 'FETCH'"),
        ("curl -H 'apikey' http://127.0.0.1:8080/x", "has no colon"),
        ("curl -X POST /message/text", "exactly one http(s) URL"),
        ("python script.py", "without -m"),
        ("lanegate dlq replay webhook-dispatcher --limit 10", None),
        ("lanegate tenants remove acme", "no lanegate command remove"),
        ("lanegate keys", "lanegate without a command"),
    ],
)
def test_each_kind_of_command_is_checked(command: str, error: str | None) -> None:
    found = command_error(command, REPO)
    assert (error is None) == (found is None), found
    if error is not None:
        assert found is not None and error in found
