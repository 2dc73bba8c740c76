"""structlog set up once per process: JSON off a terminal, pretty on one."""

import logging
import sys

import structlog

# Keys whose values never reach a log line, whatever logs them (compared lower-cased).
SECRET_KEYS = frozenset(
    {
        "webhooksecret",
        "secret",
        "accesstoken",
        "appsecret",
        "verifytoken",
        "apikey",
        "api_key",
        "x-api-key",
        "hmackey",
        "authorization",
        "password",
        "token",
        "secret_key",
        "admin_key",
    }
)
REDACTED = "[redacted]"


def _redacted(value: object, depth: int = 0) -> object:
    if depth > 4:
        return value
    if isinstance(value, dict):
        return {
            k: REDACTED if str(k).lower() in SECRET_KEYS else _redacted(v, depth + 1)
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [_redacted(v, depth + 1) for v in value]
    return value


def redact_secrets(
    _: object, __: str, event_dict: structlog.typing.EventDict
) -> structlog.typing.EventDict:
    """Replace the values of secret-looking keys, nested ones too: a safety net, not a licence."""
    return {
        k: REDACTED if k.lower() in SECRET_KEYS else _redacted(v) for k, v in event_dict.items()
    }


def configure(level: str = "INFO", *, service: str) -> None:
    """Route structlog and stdlib logging through one JSON (or console) renderer; every line
    names `service`, whatever context logs it (a task started in a context of its own too)."""

    def add_service(
        _: object, __: str, event_dict: structlog.typing.EventDict
    ) -> structlog.typing.EventDict:
        event_dict.setdefault("service", service)
        return event_dict

    renderer: structlog.typing.Processor
    if sys.stderr.isatty():
        renderer = structlog.dev.ConsoleRenderer()
    else:
        renderer = structlog.processors.JSONRenderer()
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        add_service,
        structlog.stdlib.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
        redact_secrets,
    ]
    structlog.configure(
        # Lines below the level are dropped first, before any processor runs for them.
        processors=[
            structlog.stdlib.filter_by_level,
            *shared,
            structlog.stdlib.ProcessorFormatter.wrap_for_formatter,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    formatter = structlog.stdlib.ProcessorFormatter(
        foreign_pre_chain=shared,
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    for noisy in ("aiormq", "aio_pika", "pymongo", "aiohttp.access"):
        logging.getLogger(noisy).setLevel(max(logging.WARNING, root.level))
