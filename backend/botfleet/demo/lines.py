"""A minimal line logger for the live stand-in, without the ``logging`` package (it costs
~30 ms of start-up, and benchmarks start a hundred bots).

Writes passivbot's live format ``%(asctime)s %(levelname)-8s %(message)s`` (UTC
``2026-08-22T12:34:56Z``) to a stream and, optionally, to a file rotated like
``logging.handlers.RotatingFileHandler`` (``name.log`` -> ``name.log.1`` ... ``.N``).
"""

from __future__ import annotations

import os
import time
from typing import IO

__all__ = ["LineLog"]

_LEVELS = {"TRACE": 5, "DEBUG": 10, "INFO": 20, "WARNING": 30, "ERROR": 40}


class LineLog:
    """``info/warning/error/debug(message, *args)`` with %-style args, like a Logger."""

    def __init__(self, stream: IO[str], level: str = "info") -> None:
        self.stream = stream
        self.threshold = _LEVELS.get(level.upper(), 20)
        self.file: IO[str] | None = None
        self.path = ""
        self.max_bytes = 0
        self.backups = 0
        #: Lines written so far (the live bot paces its output by it).
        self.lines = 0

    def rotate_to(self, path: str, max_bytes: int, backups: int) -> None:
        """Also append to ``path``, rotated at ``max_bytes`` bytes keeping ``backups`` files."""
        os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
        self.path, self.max_bytes, self.backups = path, max_bytes, backups
        self.file = open(path, "a", encoding="utf-8")  # noqa: SIM115 - kept open for the run

    def _rotate(self) -> None:
        assert self.file is not None
        self.file.close()
        for i in range(self.backups - 1, 0, -1):
            if os.path.exists(f"{self.path}.{i}"):
                os.replace(f"{self.path}.{i}", f"{self.path}.{i + 1}")
        os.replace(self.path, f"{self.path}.1")
        self.file = open(self.path, "a", encoding="utf-8")  # noqa: SIM115

    def log(self, level: str, message: str, *args: object) -> None:
        if _LEVELS[level] < self.threshold:
            return
        text = message % args if args else message
        line = f"{time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())} {level:<8} {text}\n"
        self.stream.write(line)
        self.stream.flush()
        self.lines += 1
        if self.file is not None:
            if self.max_bytes and self.file.tell() + len(line) > self.max_bytes:
                self._rotate()
            assert self.file is not None
            self.file.write(line)
            self.file.flush()

    def debug(self, message: str, *args: object) -> None:
        self.log("DEBUG", message, *args)

    def info(self, message: str, *args: object) -> None:
        self.log("INFO", message, *args)

    def warning(self, message: str, *args: object) -> None:
        self.log("WARNING", message, *args)

    def error(self, message: str, *args: object) -> None:
        self.log("ERROR", message, *args)
