"""The runtime packages (libs/ and services/) import nothing that only development installs."""

import ast
import re
import tomllib
from importlib.metadata import packages_distributions
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
RUNTIME = ("libs", "services")
# Importable from the repository's root only, never installed into the runtime image.
DEV_PACKAGES = {"devtools", "tests", "bench"}


def _normalized(distribution: str) -> str:
    return re.sub(r"[-_.]+", "-", distribution).lower()


def dev_only_modules() -> set[str]:
    """Top-level modules of the distributions pyproject's `dev` extra adds, and the dev packages."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    dev = {
        _normalized(re.split(r"[\[=<>~! ;]", requirement, maxsplit=1)[0])
        for requirement in project["optional-dependencies"]["dev"]
    }
    runtime = {
        _normalized(re.split(r"[\[=<>~! ;]", requirement, maxsplit=1)[0])
        for requirement in project["dependencies"]
    }
    installed = {
        module
        for module, distributions in packages_distributions().items()
        if {_normalized(d) for d in distributions} & dev
        and not {_normalized(d) for d in distributions} & runtime
    }
    return installed | DEV_PACKAGES


def imported_modules(source: Path) -> set[str]:
    """The top-level names of every absolute import in one file."""
    names = set()
    for node in ast.walk(ast.parse(source.read_text(), filename=str(source))):
        if isinstance(node, ast.Import):
            names |= {alias.name.split(".")[0] for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module.split(".")[0])
    return names


def test_the_dev_only_modules_include_the_embedded_store() -> None:
    assert {"mongoeco", "pytest", "devtools"} <= dev_only_modules()


def test_no_runtime_module_imports_a_dev_only_module() -> None:
    dev_only = dev_only_modules()
    found = {
        str(source.relative_to(REPO)): sorted(imported_modules(source) & dev_only)
        for folder in RUNTIME
        for source in sorted((REPO / folder).rglob("*.py"))
    }
    assert {} == {path: modules for path, modules in found.items() if modules}


def test_the_scan_sees_an_import_inside_a_function(tmp_path: Path) -> None:
    source = tmp_path / "late.py"
    source.write_text("def serve():\n    from mongoeco.wire import Server\n    import pytest\n")
    assert {"mongoeco", "pytest"} == imported_modules(source)
