"""`python -m bench`: run every benchmark module in turn."""

import importlib
import pkgutil

import bench


def main() -> None:
    for module in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
        if not module.startswith("_"):
            importlib.import_module(f"bench.{module}").main()


if __name__ == "__main__":
    main()
