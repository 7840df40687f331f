"""Output capture of one instance through a named pipe (FIFO) in its agent dir.

Why a FIFO and who holds which end:

- The bot's stdout and stderr are a blocking write end of ``.botfleet/output.fifo``.
- The agent holds a non-blocking read end (pipe buffer raised to 1 MiB with
  ``F_SETPIPE_SZ``), read with all other instances' pipes by a :class:`PipeReader`, plus a
  write end of its own so the read end never sees end-of-file (no busy wake-ups between a
  bot's exit and its restart).
- The bot also inherits the agent's read end (``pass_fds``) and never reads it. So the pipe
  has a reader for as long as the bot lives: if the agent dies, the bot gets no EPIPE/SIGPIPE;
  its output waits in the kernel buffer and the next agent opens the FIFO by path and goes on
  from the next byte. (If the agent stays down while the bot writes more than the buffer,
  the bot blocks in write() until an agent reads again: it is paused, not killed, and no line
  is lost. Output of a bot that ends while no agent runs is lost with the pipe.)

Each read (up to 1 MiB) is handled with bytes operations only: one timestamp per read put at
every line start (``2026-08-22T12:34:56.123456Z ``), one write to :class:`OutputLog`, then, if
the stream queue has room, one decode and split into lines for the api. The queue is bounded
(lines); on overflow lines are counted in ``dropped`` and only the disk has them.
"""

from __future__ import annotations

import asyncio
import fcntl
import functools
import os
import select
import stat
import time
import weakref
from collections import deque
from collections.abc import Callable
from pathlib import Path

import structlog

from botfleet.agent.logfile import OutputLog
from botfleet.protocol import LogLines, encode_log_lines

__all__ = ["COALESCE", "OutputCapture", "PipeReader", "timestamp"]

log = structlog.get_logger(__name__)

F_SETPIPE_SZ = 1031  # linux/fcntl.h (F_LINUX_SPECIFIC_BASE + 7)
PIPE_SIZE = 1 << 20
READ_SIZE = 1 << 20
READS_PER_WAKEUP = 8
PARTIAL_MAX = 64 * 1024
COALESCE = 0.03  # seconds a pipe's output may wait to be read with others' (PipeReader)
BUSY_RATE = 2 * 2**20  # bytes/s: a pipe filling faster is read on each readiness ...
BUSY_HOLD = 1.0  # ... until this long after the last such read (s)


_second = -1
_second_text = b""


def timestamp() -> bytes:
    """Now in UTC as ``b"2026-08-22T12:34:56.123456Z "`` (ISO 8601, microseconds, Z). The
    date part is formatted once per second (strftime costs more than the rest of a read)."""
    global _second, _second_text
    now = time.time_ns() // 1000
    second, micros = divmod(now, 1_000_000)
    if second != _second:
        _second = second
        _second_text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(second)).encode()
    return b"%s.%06dZ " % (_second_text, micros)


@functools.cache
def _pipe_size() -> int:
    """The pipe buffer to ask for: 1 MiB or the system limit (read once per process)."""
    try:
        limit = int(Path("/proc/sys/fs/pipe-max-size").read_text())
    except (OSError, ValueError):
        limit = PIPE_SIZE
    return min(PIPE_SIZE, limit)


class PipeReader:
    """Reads the pipes of all captures of one event loop together, so that output arriving
    within ``COALESCE`` seconds costs one wake-up, not one per line (at 100 bots x 1 line/s
    the per-pipe wake-ups were most of the agent's idle CPU, docs/benchmarks.md).

    The pipes are in an epoll set of our own whose fd the event loop watches. Quiet: when it
    becomes readable the loop stops watching it and a drain runs ``COALESCE`` s later. A drain
    reads every ready pipe (``epoll.poll(0)``); if it found output, the next drain is again
    ``COALESCE`` s later (one timer wake-up per period while output flows, none when it
    stops). When a pipe gave more than ``BUSY_RATE`` bytes/s since the previous drain (a
    flood), the set is read on each readiness, as each pipe was before (not one pipe-full
    per period), until ``BUSY_HOLD`` s after the last such read (a flooding bot that pauses
    for a moment, e.g. descheduled, does not fall back to the period); when a drain found nothing, the loop watches the set
    again. A line is read at most ``COALESCE`` s after its write (later only when the event
    loop itself is late).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self._loop_ref = weakref.ref(loop)  # the loop is the key of _READERS: no strong ref
        self._epoll = select.epoll()
        self._captures: dict[int, OutputCapture] = {}
        self._watching = False
        self._drain_at: asyncio.TimerHandle | asyncio.Handle | None = None
        self._since = 0.0  # when the pending drain was scheduled (loop clock)
        self._busy = False  # a pipe fills faster than BUSY_RATE: read on each readiness
        self._busy_until = float("-inf")

    @classmethod
    def of(cls, loop: asyncio.AbstractEventLoop) -> PipeReader:
        """The reader of ``loop`` (one per loop, created at first use)."""
        reader = _READERS.get(loop)
        if reader is None:
            reader = _READERS[loop] = cls(loop)
        return reader

    def add(self, fd: int, capture: OutputCapture) -> None:
        self._epoll.register(fd, select.EPOLLIN)
        self._captures[fd] = capture
        if self._drain_at is None:
            self._watch()

    def remove(self, fd: int) -> None:
        self._epoll.unregister(fd)
        del self._captures[fd]

    @property
    def _loop(self) -> asyncio.AbstractEventLoop:
        loop = self._loop_ref()
        assert loop is not None, "the event loop of this PipeReader is gone"
        return loop

    def _watch(self) -> None:
        if not self._watching:
            self._loop.add_reader(self._epoll.fileno(), self._on_ready)
            self._watching = True

    def _unwatch(self) -> None:
        if self._watching:
            self._loop.remove_reader(self._epoll.fileno())
            self._watching = False

    def _on_ready(self) -> None:
        if self._busy:  # a flood: read now, the loop keeps watching the set
            self._drain()
            return
        self._unwatch()
        self._since = self._loop.time()
        self._drain_at = self._loop.call_later(COALESCE, self._drain)

    def _drain(self) -> None:
        loop = self._loop
        self._drain_at = None
        now = loop.time()
        busy_bytes = BUSY_RATE * (now - self._since)
        got = fast = False
        for fd, _ in self._epoll.poll(0):
            capture = self._captures.get(fd)
            if capture is not None:
                read = capture._on_readable()
                got = got or read > 0
                fast = fast or read > busy_bytes
        self._since = now
        if fast:
            self._busy_until = now + BUSY_HOLD
        self._busy = now < self._busy_until
        if got and not self._busy:
            self._unwatch()
            self._drain_at = loop.call_later(COALESCE, self._drain)
        else:  # quiet, or a flood: read on the next readiness, without a period
            self._watch()


_READERS: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, PipeReader] = (
    weakref.WeakKeyDictionary())


class OutputCapture:
    """The FIFO, its readers and the stream queue of one instance.

    ``on_output(capture)`` is called (synchronously, from the event loop) when the stream
    queue goes from empty to non-empty; :meth:`take` then returns the queued lines.
    """

    def __init__(
        self,
        instance_id: str,
        fifo: Path,
        output: OutputLog,
        *,
        add_timestamps: bool,
        queue_lines: int,
        on_output: Callable[[OutputCapture], None] | None,
    ) -> None:
        self.instance_id = instance_id
        self.fifo = fifo
        self.output = output
        self.add_timestamps = add_timestamps
        self._queue_lines = queue_lines
        self._on_output = on_output
        self._queue: deque[tuple[int, list[str]]] = deque()
        self._queued = 0
        self._dropped = 0
        self._partial = output.tail  # unfinished last line, as in the file
        self._rfd = -1
        self._keep_wfd = -1
        self._reader: PipeReader | None = None
        self.disk_error: str | None = None

    # -- the pipe ----------------------------------------------------------------------------

    def open(self) -> None:
        """Create the FIFO if needed (replacing anything else at its path), open the agent's
        ends and start reading. Idempotent. Raises OSError when the FIFO cannot be made."""
        if self._rfd >= 0:
            return
        try:
            if not stat.S_ISFIFO(os.lstat(self.fifo).st_mode):
                self.fifo.unlink()
                os.mkfifo(self.fifo, 0o600)
        except FileNotFoundError:
            self.fifo.parent.mkdir(parents=True, exist_ok=True)
            os.mkfifo(self.fifo, 0o600)
        self._rfd = os.open(self.fifo, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self._keep_wfd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            fcntl.fcntl(self._rfd, F_SETPIPE_SZ, _pipe_size())
        except OSError as exc:  # EPERM above the limit for non-root, EBUSY if data is larger
            log.warning("pipe size not raised", instance_id=self.instance_id, error=str(exc))
        self._reader = PipeReader.of(asyncio.get_running_loop())
        self._reader.add(self._rfd, self)

    def child_fds(self) -> tuple[int, int]:
        """``(stdout_fd, reader_fd)`` for a new process: a fresh blocking write end (the caller
        closes it after the spawn) and the read end the child must inherit (``pass_fds``)."""
        self.open()
        wfd = os.open(self.fifo, os.O_WRONLY | os.O_CLOEXEC)  # a reader exists: no blocking
        return wfd, self._rfd

    def close(self) -> None:
        """Read what is in the pipe now, stop reading and close the agent's ends (the bot keeps
        its own). Idempotent."""
        if self._rfd < 0:
            return
        self._on_readable()
        assert self._reader is not None
        self._reader.remove(self._rfd)
        os.close(self._rfd)
        os.close(self._keep_wfd)
        self._rfd = self._keep_wfd = -1
        self.output.close()

    def _on_readable(self) -> int:
        """Read what the pipe holds (up to READS_PER_WAKEUP reads); returns the bytes read."""
        total = 0
        for _ in range(READS_PER_WAKEUP):
            try:
                data = os.read(self._rfd, READ_SIZE)
            except BlockingIOError:
                break
            if not data:
                break
            total += len(data)
            self.consume(data)
            if len(data) < READ_SIZE:
                break
        return total

    # -- one read ----------------------------------------------------------------------------

    def consume(self, data: bytes) -> None:
        """Handle one read of the bot's output: timestamp, write to disk, queue for the api."""
        out = self.output
        ends_line = data.endswith(b"\n")
        lines = data.count(b"\n")
        if self.add_timestamps:
            ts = timestamp()
            body = data.replace(b"\n", b"\n" + ts)
            if ends_line:
                body = body[: -len(ts)]
            if out.at_line_start:
                body = ts + body
        else:
            body = data
        first_seq = out.next_seq
        try:
            out.write(body, lines, ends_line)
        except OSError as exc:  # the disk is full: the bot must not stop because of that
            out.next_seq += lines
            out.at_line_start = ends_line
            if self.disk_error != str(exc):
                self.disk_error = str(exc)
                log.error("cannot write bot output", instance_id=self.instance_id, error=str(exc))
        self._enqueue(body, lines, first_seq)

    def _enqueue(self, body: bytes, lines: int, first_seq: int) -> None:
        if not lines:
            if len(self._partial) < PARTIAL_MAX:
                self._partial += body
            return
        head, _, rest = body.rpartition(b"\n")
        room = self._queue_lines - self._queued
        if room <= 0:
            self._dropped += lines
            self._partial = rest[:PARTIAL_MAX]
            return
        if self._partial:
            head = self._partial + head
        self._partial = rest[:PARTIAL_MAX]
        texts = head.decode("utf-8", "replace").split("\n")
        if len(texts) > room:
            self._dropped += len(texts) - room
            del texts[room:]
        was_empty = not self._queued
        self._queue.append((first_seq, texts))
        self._queued += len(texts)
        if was_empty and self._on_output is not None:
            self._on_output(self)

    # -- the stream --------------------------------------------------------------------------

    @property
    def pending(self) -> int:
        """Lines waiting in the stream queue."""
        return self._queued

    @property
    def dropped(self) -> int:
        """Lines not queued for the api since the last :meth:`take` (they are on disk)."""
        return self._dropped

    def take(self, max_lines: int) -> list[LogLines]:
        """Pop up to ``max_lines`` queued lines as LogLines events (one per run of consecutive
        numbers); the first carries and resets the dropped count. Empty when nothing waits."""
        return [
            LogLines.model_construct(instance_id=self.instance_id, first_seq=first, lines=lines,
                                     dropped=dropped)
            for first, lines, dropped in self._pop(max_lines)
        ]

    def take_json(self, max_lines: int) -> tuple[list[bytes], int]:
        """As :meth:`take`, but each event already as JSON (:func:`encode_log_lines`), the
        form the link sends; and the number of lines taken. Building pydantic models per batch
        was a fifth of the agent's idle Python time (docs/benchmarks.md)."""
        taken = 0
        out = []
        for first, lines, dropped in self._pop(max_lines):
            taken += len(lines)
            out.append(encode_log_lines(self.instance_id, first, lines, dropped))
        return out, taken

    def _pop(self, max_lines: int) -> list[tuple[int, list[str], int]]:
        """``(first_seq, lines, dropped)`` per run of consecutive numbers, up to
        ``max_lines`` lines; the first carries and resets the dropped count (alone, with no
        lines, when nothing was queued)."""
        events: list[tuple[int, list[str], int]] = []
        dropped, self._dropped = self._dropped, 0
        while self._queue and max_lines > 0:
            first, texts = self._queue[0]
            if len(texts) > max_lines:
                part, self._queue[0] = texts[:max_lines], (first + max_lines, texts[max_lines:])
            else:
                part = texts
                self._queue.popleft()
            self._queued -= len(part)
            max_lines -= len(part)
            if events and events[-1][0] + len(events[-1][1]) == first:
                prev_first, prev_lines, prev_dropped = events.pop()
                events.append((prev_first, prev_lines + part, prev_dropped))
            else:
                events.append((first, part, dropped))
                dropped = 0
        if dropped:  # nothing was queued: report the count alone
            events.append((self.output.next_seq, [], dropped))
        return events
