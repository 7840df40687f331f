"""A wheel of *this* botfleet (the code the controller runs), made in-process for provisioning
a host: the installed ``botfleet`` package directory plus its metadata, in the wheel format
(PEP 427 / the binary distribution format spec: ``{name}-{ver}.dist-info/`` with
``METADATA``, ``WHEEL``, ``entry_points.txt`` and a ``RECORD`` of urlsafe-base64 SHA-256s).

The metadata's ``Requires-Dist`` keeps the ``server`` extra optional, so ``pip install`` of the
wheel on a host installs only what an agent needs (DESIGN.md, Packaging).
"""

from __future__ import annotations

import base64
import hashlib
import io
import zipfile
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from pathlib import Path

import botfleet

__all__ = ["Wheel", "build_wheel"]

_SKIP_DIRS = {"__pycache__"}
_SKIP_SUFFIXES = {".pyc", ".pyo"}


@dataclass(frozen=True, slots=True)
class Wheel:
    """``filename`` as pip expects it, ``data`` the zip bytes, ``sha256`` their hex digest."""

    filename: str
    version: str
    data: bytes
    sha256: str


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    return f"sha256={digest}"


def _metadata_text(version: str) -> str:
    try:
        text = metadata.distribution("botfleet").read_text("METADATA")
    except metadata.PackageNotFoundError:
        text = None
    if text:
        return text
    return f"Metadata-Version: 2.1\nName: botfleet\nVersion: {version}\n"


@lru_cache(maxsize=1)
def build_wheel() -> Wheel:
    """The wheel of the running botfleet (built once per process; deterministic bytes for
    the same files, so an unchanged version is recognised by its digest)."""
    version = botfleet.__version__
    root = Path(botfleet.__file__).resolve().parent
    files: list[tuple[str, bytes]] = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if not path.is_file() or _SKIP_DIRS & set(rel.parts) or path.suffix in _SKIP_SUFFIXES:
            continue
        files.append((f"botfleet/{rel.as_posix()}", path.read_bytes()))
    info = f"botfleet-{version}.dist-info"
    files.append((f"{info}/METADATA", _metadata_text(version).encode()))
    wheel_meta = b"Wheel-Version: 1.0\nGenerator: botfleet\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
    files.append((f"{info}/WHEEL", wheel_meta))
    files.append((f"{info}/entry_points.txt", b"[console_scripts]\nbotfleet = botfleet.cli:main\n"))
    files.append((f"{info}/top_level.txt", b"botfleet\n"))
    record = "".join(f"{name},{_record_hash(data)},{len(data)}\n" for name, data in files)
    record += f"{info}/RECORD,,\n"
    files.append((f"{info}/RECORD", record.encode()))
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in files:
            entry = zipfile.ZipInfo(name, date_time=(2020, 1, 1, 0, 0, 0))
            entry.external_attr = 0o644 << 16
            entry.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(entry, data)
    data = buffer.getvalue()
    return Wheel(f"botfleet-{version}-py3-none-any.whl", version, data, hashlib.sha256(data).hexdigest())
