"""structlog set-up: console lines for people, JSON for machines (``BOTFLEET_LOG_FORMAT``)."""

from __future__ import annotations

import logging
import sys

import structlog

__all__ = ["configure_logging"]


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    """Route structlog and the standard library's logging to stderr in one format.

    Tracebacks are plain Python ones: structlog's default, rich's renderer when rich is
    installed (litestar brings it), draws boxes into log files. (structlog.dev imports rich and
    pygments as soon as structlog is imported, +3.8 MiB; ``botfleet agent`` keeps them out,
    see botfleet.cli.cmd_agent.) In JSON the traceback is the ``exception`` string field."""
    render: list[structlog.typing.Processor] = (
        [structlog.processors.format_exc_info, structlog.processors.JSONRenderer()]
        if fmt == "json"
        else [structlog.dev.ConsoleRenderer(colors=sys.stderr.isatty(),
                                            exception_formatter=structlog.dev.plain_traceback)]
    )
    shared: list[structlog.typing.Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    structlog.configure(
        # filter_by_level first: a call below the level costs a level check, not a time stamp
        # and the rest of the chain (the agent logs every state change at info).
        processors=[structlog.stdlib.filter_by_level, *shared,
                    structlog.stdlib.ProcessorFormatter.wrap_for_formatter],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        cache_logger_on_first_use=True,
    )
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(foreign_pre_chain=shared, processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta, *render])
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
