"""lanegate: the shared library of the five gateway services."""

from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("lanegate")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0.0.0"
