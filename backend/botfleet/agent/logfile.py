"""One instance's captured output on disk: ``logs/<id>/output.log``, rotated by size to
``output.log.1`` ... ``output.log.N``, with a line number (``seq``) per line that continues
across rotations and agent restarts.

The file is a byte-exact copy of what the bot wrote, with a UTC timestamp put at the start of
each line (when the spec asks for it). A line the bot has not finished yet is written as far as
it goes (so an agent killed at any moment loses nothing it has read from the pipe); the next
agent sees that the file does not end with a newline and continues the line without a new
timestamp.

Line numbers are not stored per line: ``output.seq`` holds the number of the first line of the
current ``output.log`` and that file's inode (to notice a rotation cut short by a crash); the
next number is that base plus the newlines in ``output.log``, counted once at open. It is
written at each rotation; before the first one there is none and the base is 1.
"""

from __future__ import annotations

import os
from pathlib import Path

from botfleet.agent.layout import atomic_write_json, read_json

__all__ = ["OutputLog"]

_CHUNK = 1 << 20
_TAIL = 64 * 1024


def _count_newlines(path: Path) -> int:
    count = 0
    try:
        with path.open("rb") as f:
            while chunk := f.read(_CHUNK):
                count += chunk.count(b"\n")
    except FileNotFoundError:
        return 0
    return count


class OutputLog:
    """Append-only, size-rotated log of one instance.

    ``max_bytes``: rotate once ``output.log`` reaches this size, at a line end (a line is
    never split across files; one longer than ``max_bytes`` makes a bigger file).
    ``backups``: rotated files kept (0 keeps none).

    Attributes read by the capture: ``next_seq`` (number of the next line to complete, the
    first line ever is 1), ``at_line_start`` (False while a line is unfinished), ``tail``
    (bytes of the unfinished last line, at most 64 KiB, as in the file).
    """

    def __init__(self, log_dir: Path, max_bytes: int, backups: int) -> None:
        log_dir.mkdir(parents=True, exist_ok=True)
        self.path = log_dir / "output.log"
        self._seq_path = log_dir / "output.seq"
        self._max_bytes = max(1, max_bytes)
        self._backups = max(0, backups)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        st = os.fstat(self._fd)
        self._size = st.st_size
        base = self._recover_base(st.st_ino)
        self.next_seq = base + _count_newlines(self.path)
        self.tail = b""
        if self._size:
            with self.path.open("rb") as f:
                f.seek(max(0, self._size - _TAIL))
                last = f.read()
            self.tail = last.rpartition(b"\n")[2]
        self.at_line_start = not self.tail

    def _recover_base(self, ino: int) -> int:
        saved = read_json(self._seq_path)
        if not isinstance(saved, dict) or not isinstance(saved.get("base"), int):
            # No rotation finished (each writes the file): output.log holds line 1 on, unless
            # the first rotation was cut short before writing it.
            first = self.path.with_name("output.log.1")
            if not first.exists():
                return 1  # nothing to record: a new log costs no extra file
            base = 1 + _count_newlines(first)
        elif saved.get("ino") == ino:
            return int(saved["base"])
        else:
            base = int(saved["base"])
            first = self.path.with_name("output.log.1")
            try:
                if first.stat().st_ino == saved.get("ino"):
                    # Crashed between renaming output.log and writing the new base.
                    base += _count_newlines(first)
            except FileNotFoundError:
                pass
        atomic_write_json(self._seq_path, {"base": base, "ino": ino})
        return base

    @property
    def size(self) -> int:
        """Bytes in the current ``output.log``."""
        return self._size

    def write(self, data: bytes, lines: int, ends_line: bool) -> None:
        """Append ``data`` (already timestamped) holding ``lines`` complete lines; ``ends_line``
        says whether it ends with a newline. Rotates at the first line end at or past the size
        limit, also within ``data``. Raises OSError when the disk refuses (full, read-only)."""
        while self._size + len(data) >= self._max_bytes:
            cut = data.find(b"\n", max(0, self._max_bytes - self._size - 1))
            if cut < 0:
                break
            head, data = data[: cut + 1], data[cut + 1 :]
            n = head.count(b"\n")
            self._append(head, n, True)
            lines -= n
            self.rotate()
            if not data:
                return
        self._append(data, lines, ends_line)

    def _append(self, data: bytes, lines: int, ends_line: bool) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(self._fd, view) :]
        self._size += len(data)
        self.next_seq += lines
        self.at_line_start = ends_line
        if ends_line:
            self.tail = b""
        elif lines:
            self.tail = data.rpartition(b"\n")[2][-_TAIL:]
        else:
            self.tail = (self.tail + data)[-_TAIL:]

    def rotate(self) -> None:
        """Shift ``output.log.i`` to ``.i+1`` (dropping the oldest), move ``output.log`` to
        ``.1`` and start an empty one whose first line is ``next_seq``."""
        os.close(self._fd)
        if self._backups:
            for i in range(self._backups - 1, 0, -1):
                src = self.path.with_name(f"output.log.{i}")
                if src.exists():
                    os.replace(src, self.path.with_name(f"output.log.{i + 1}"))
            os.replace(self.path, self.path.with_name("output.log.1"))
        else:
            self.path.unlink(missing_ok=True)
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)
        self._size = 0
        atomic_write_json(self._seq_path, {"base": self.next_seq, "ino": os.fstat(self._fd).st_ino})

    def close(self) -> None:
        """Close the file (idempotent)."""
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
