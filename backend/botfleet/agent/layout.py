"""Where the agent keeps things on its host, and how a :class:`~botfleet.protocol.ProcessSpec`
becomes a concrete command (placeholders, files, environment).

On-disk layout under the agent's state dir (``AgentSettings.state_dir``)::

    instances/<instance_id>/              the instance dir: spec.files, default cwd
    instances/<instance_id>/.botfleet/    agent-owned, spec.files may not write here
        state.json                        the instance's state document: last applied
                                          ApplyCommand (spec.files left out), Supervisor state,
                                          process record (JSON), as of the last compaction
        state.log                         newer state documents, one JSON line each (the
                                          last complete line is the current one)
        files.<generation>.json           that command's spec.files (written before each start)
        output.fifo                       named pipe: the bot's stdout+stderr
    logs/<instance_id>/output.log         captured lines, rotated to output.log.1 ... .N
    logs/<instance_id>/output.seq         {"base": seq of output.log's first line, "ino": inode}
    removed.json                          {instance_id: generation} of removed instances

The JSON files are written atomically (temporary file + ``os.replace``). The state document
changes at every state change of every instance, so it is appended to ``state.log`` instead
(:class:`StateStore`): one ``write`` of a few hundred microseconds less than a replace on ext4,
whose ``auto_da_alloc`` starts writeback of the new file at each rename over an old one
(measured 1.0-1.5 ms per replace here, the agent's largest cost when starting 100 bots).
"""

from __future__ import annotations

import functools
import json
import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

import botfleet
from botfleet.protocol import ProcessSpec

__all__ = [
    "AGENT_DIR",
    "Command",
    "InstancePaths",
    "SpecError",
    "StateLayout",
    "StateStore",
    "atomic_write_bytes",
    "atomic_write_json",
    "demo_v7_root",
    "link_or_copy",
    "read_json",
    "render_spec",
    "write_if_changed",
]

#: The agent-owned directory inside an instance dir (reserved: spec.files may not touch it).
AGENT_DIR = ".botfleet"


class SpecError(ValueError):
    """A ProcessSpec that cannot be run as given (e.g. a file path outside the instance dir).
    The message says what was wrong; the instance goes FATAL with it."""


@functools.cache
def demo_v7_root() -> Path:
    """``botfleet/demo/v7root`` computed from the package location (the demo package is not
    imported: it may be absent on a VPS). Computed once per process."""
    return Path(botfleet.__file__).resolve().parent / "demo" / "v7root"


@dataclass(frozen=True, slots=True)
class InstancePaths:
    """Paths of one instance (see the module docstring)."""

    dir: Path
    agent_dir: Path
    state: Path
    state_log: Path
    fifo: Path
    log_dir: Path

    def files(self, generation: int) -> Path:
        """Where the ``spec.files`` of the command with ``generation`` are kept (JSON). Named
        by generation so that state document and its files change together: a new command's
        files are written before its state document, the old ones removed after."""
        return self.agent_dir / f"files.{generation}.json"

    def other_files(self, generation: int) -> list[Path]:
        """Files of commands other than ``generation`` (left to remove)."""
        keep = self.files(generation).name
        return [p for p in self.agent_dir.glob("files.*.json") if p.name != keep]


@dataclass(frozen=True, slots=True)
class StateLayout:
    """The agent's state dir. ``root`` should be absolute (``AgentSettings.state_dir`` is)."""

    root: Path

    @property
    def instances_dir(self) -> Path:
        return self.root / "instances"

    @property
    def removed_file(self) -> Path:
        return self.root / "removed.json"

    def instance(self, instance_id: str) -> InstancePaths:
        """Paths for ``instance_id``. Raises :class:`SpecError` for an id that is not a plain
        directory name (ids come from the api; a ``/`` or ``..`` would escape the state dir)."""
        if instance_id in ("", ".", "..") or "/" in instance_id or "\0" in instance_id:
            raise SpecError(f"instance id {instance_id!r} is not a plain name")
        d = self.instances_dir / instance_id
        agent = d / AGENT_DIR
        return InstancePaths(
            dir=d,
            agent_dir=agent,
            state=agent / "state.json",
            state_log=agent / "state.log",
            fifo=agent / "output.fifo",
            log_dir=self.root / "logs" / instance_id,
        )

    def known_instance_ids(self) -> list[str]:
        """Ids of instances that have a state document (``state.json`` or ``state.log``),
        sorted."""
        if not self.instances_dir.is_dir():
            return []
        return sorted(
            p.name for p in self.instances_dir.iterdir()
            if (p / AGENT_DIR / "state.json").is_file() or (p / AGENT_DIR / "state.log").is_file()
        )


class StateStore:
    """The state document of one instance: ``state.json`` plus the lines appended to
    ``state.log`` since (see the module docstring).

    :meth:`write` appends one line ``<json>\n`` with a single ``write`` on an ``O_APPEND``
    file: a kill -9 of the agent leaves the line whole or, in the worst case (a document
    longer than a page, cut between pages), a last line without its newline, which
    :meth:`read` skips (the previous document is then the current one). Once the log holds
    more than ``compact_bytes``, the document just appended is also written to
    ``state.json`` atomically and the log removed (a crash between the two leaves a log
    whose last line is that same document). Nothing is fsynced: as with ``os.replace`` before, the page
    cache keeps it across an agent crash; a power cut may lose the last seconds, never
    mix two documents."""

    def __init__(self, paths: InstancePaths, compact_bytes: int = 64 * 1024) -> None:
        self.paths = paths
        self.compact_bytes = compact_bytes
        self._log_size: int | None = None  # unknown until the first read
        self._torn = False  # the log ends inside a line: the next write starts a new one

    def read(self) -> Any | None:
        """The current document (the last complete line of ``state.log``, else
        ``state.json``), or None when there is none."""
        try:
            data = self.paths.state_log.read_bytes()
        except FileNotFoundError:
            data = b""
        self._log_size = len(data)
        self._torn = bool(data) and not data.endswith(b"\n")
        end = data.rfind(b"\n")
        while end >= 0:
            start = data.rfind(b"\n", 0, end) + 1
            try:
                return json.loads(data[start:end])
            except ValueError:  # a line cut by a crash mid-write: the one before holds
                end = start - 1
        return read_json(self.paths.state)

    def write(self, doc: Any) -> None:
        """Make ``doc`` the current document. Raises OSError when the disk refuses (the
        previous document stays the current one)."""
        line = json.dumps(doc, separators=(",", ":")).encode() + b"\n"
        if self._log_size is None:
            self.read()
        assert self._log_size is not None
        if self._torn:
            line = b"\n" + line
        flags = os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC
        try:
            fd = os.open(self.paths.state_log, flags, 0o600)
        except FileNotFoundError:  # a new instance: its dir is made on the first write
            self.paths.agent_dir.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.paths.state_log, flags, 0o600)
        try:
            written = os.write(fd, line)
        except OSError:
            self._log_size = None  # unknown: read again before the next write
            raise
        finally:
            os.close(fd)
        self._log_size += written
        self._torn = written != len(line)
        if not self._torn and self._log_size > self.compact_bytes:
            # The log's last line is ``doc`` until it is removed: a crash anywhere here
            # leaves ``doc`` as the current document.
            atomic_write_bytes(self.paths.state, line.strip(b"\n"))
            self.paths.state_log.unlink(missing_ok=True)
            self._log_size = 0
        if self._torn:  # only on a full disk
            raise OSError(f"short write to {self.paths.state_log}: {written} of {len(line)} bytes")


def atomic_write_bytes(path: Path, data: bytes, *, fsync: bool = False) -> None:
    """Write ``data`` to ``path`` atomically: a reader sees the old or the new content, never a
    part (temporary file in the same dir, then ``os.replace``). ``fsync=True`` also survives a
    power cut (costs a few milliseconds)."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC
    try:
        fd = os.open(tmp, flags, 0o600)
    except FileNotFoundError:  # the dir is missing (first write): one syscall saved otherwise
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(tmp, flags, 0o600)
    try:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view) :]
        if fsync:
            os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, path)


def atomic_write_json(path: Path, obj: Any, *, fsync: bool = False) -> None:
    """:func:`atomic_write_bytes` of ``obj`` as JSON."""
    atomic_write_bytes(path, json.dumps(obj, separators=(",", ":")).encode(), fsync=fsync)


def write_if_changed(path: Path, data: bytes) -> None:
    """:func:`atomic_write_bytes` unless ``path`` already holds exactly ``data`` (reading
    28 KB costs far less than a replace; a restart with an unchanged config writes nothing)."""
    try:
        with open(path, "rb") as f:
            if f.read(len(data) + 1) == data:
                return
    except OSError:
        pass
    atomic_write_bytes(path, data)


def link_or_copy(path: Path, source: Path) -> bool:
    """Make ``path`` hold what ``source`` holds (a file never modified in place): a hard link,
    else a copy written with :func:`atomic_write_bytes`. False when ``source`` is missing.
    Raises OSError when the disk refuses."""
    path.unlink(missing_ok=True)  # a leftover of an interrupted apply
    try:
        os.link(source, path)
        return True
    except FileNotFoundError:
        return False
    except OSError:  # no hard links here: copy
        pass
    try:
        data = source.read_bytes()
    except FileNotFoundError:
        return False
    atomic_write_bytes(path, data)
    return True


def read_json(path: Path) -> Any | None:
    """The JSON in ``path``, or None when it is missing or unreadable (a torn file cannot
    happen with atomic writes, but a hand-edited one can)."""
    try:
        return json.loads(path.read_bytes())
    except (OSError, ValueError):
        return None


@dataclass(frozen=True, slots=True)
class Command:
    """A spec made concrete for one start: argv, cwd and environment with placeholders
    replaced, and the files to write (absolute path -> content)."""

    argv: list[str]
    cwd: Path
    env: dict[str, str]
    files: dict[Path, str]


def _replace(text: str, values: Mapping[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(key, value)
    return text


def _file_path(instance_dir: Path, resolved_dir: Path, name: str) -> Path:
    rel = PurePosixPath(name)
    if not name or rel.is_absolute() or ".." in rel.parts or "\0" in name:
        raise SpecError(
            f"spec.files path {name!r} must be relative to the instance dir, without '..'"
        )
    if rel.parts[0] == AGENT_DIR:
        raise SpecError(f"spec.files path {name!r} is inside the agent's reserved {AGENT_DIR}/")
    path = (instance_dir / rel).resolve()
    if not path.is_relative_to(resolved_dir):
        raise SpecError(f"spec.files path {name!r} resolves outside the instance dir")
    return path


def render_spec(spec: ProcessSpec, instance_dir: Path) -> Command:
    """Make ``spec`` concrete for ``instance_dir``: replace ``protocol.PLACEHOLDERS`` in argv,
    cwd and env values by plain ``str.replace`` (``{python}`` = ``sys.executable``), inherit
    the agent's environment plus ``spec.env`` and ``PYTHONUNBUFFERED=1``, and resolve
    ``spec.files`` under the instance dir. Raises :class:`SpecError` for a file path that is
    absolute, contains ``..``, resolves outside the instance dir or into ``.botfleet/``."""
    values = {
        "{python}": sys.executable,
        "{instance_dir}": str(instance_dir),
        "{demo_v7_root}": str(demo_v7_root()),
    }
    env = dict(os.environ)
    env.update({k: _replace(v, values) for k, v in spec.env.items()})
    env["PYTHONUNBUFFERED"] = "1"
    cwd = Path(_replace(spec.cwd, values)) if spec.cwd else instance_dir
    if not cwd.is_absolute():
        cwd = instance_dir / cwd
    if spec.files:
        resolved = instance_dir.resolve()
        files = {_file_path(instance_dir, resolved, name): text for name, text in spec.files.items()}
    else:
        files = {}
    return Command(argv=[_replace(a, values) for a in spec.argv], cwd=cwd, env=env, files=files)
