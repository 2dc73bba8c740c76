"""`python -m bench`: run every benchmark module in turn (but those with their own target)."""

import importlib
import pkgutil

import bench

# Benchmarks with a make target of their own, too long or needing another store.
OWN_TARGETS = {"history", "pipeline"}


def main() -> None:
    for module in sorted(m.name for m in pkgutil.iter_modules(bench.__path__)):
        if not module.startswith("_") and module not in OWN_TARGETS:
            importlib.import_module(f"bench.{module}").main()


if __name__ == "__main__":
    main()
