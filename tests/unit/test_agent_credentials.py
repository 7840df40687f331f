"""The agent's api-keys.json on a real filesystem: 0600 whatever the umask, links only where
they belong, a user's own file in a passivbot checkout left alone."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

from botfleet.agent.credentials import Credentials, write_private
from botfleet.agent.layout import StateLayout
from botfleet.protocol import HostCredentials
from botfleet.settings import AgentSettings

ENTRY = {"exchange": "binance", "key": "k", "secret": "s"}


def _creds(tmp_path: Path) -> Credentials:
    return Credentials(StateLayout(tmp_path / "state"), AgentSettings(home=tmp_path))


def test_file_is_0600_even_under_a_permissive_umask(tmp_path: Path) -> None:
    old = os.umask(0)
    try:
        path = tmp_path / "api-keys.json"
        path.write_text("{}")
        path.chmod(0o644)  # an older, too open file is replaced, not reused
        write_private(path, b'{"a": 1}')
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert json.loads(path.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["api-keys.json"]  # no temporary file left


def test_instance_dirs_link_to_the_host_file_and_unlisted_ones_lose_their_link(tmp_path: Path) -> None:
    creds = _creds(tmp_path)
    creds.write(HostCredentials(version="v1", accounts={"binance_01": ENTRY}, instances=["a", "b"]))
    a = creds.layout.instance("a").dir / "api-keys.json"
    b = creds.layout.instance("b").dir / "api-keys.json"
    assert a.is_symlink() and json.loads(a.read_text()) == {"binance_01": ENTRY}
    assert creds.version == "v1"
    creds.write(HostCredentials(version="v2", accounts={}, instances=["a"]))
    assert json.loads(a.read_text()) == {}
    assert not b.exists() and not b.is_symlink()
    assert creds.version == "v2"


def test_a_users_own_file_in_a_checkout_is_left_alone(tmp_path: Path) -> None:
    creds = _creds(tmp_path)
    mine, empty = tmp_path / "v7-mine", tmp_path / "v7-empty"
    mine.mkdir()
    empty.mkdir()
    (mine / "api-keys.json").write_text('{"their_own": {}}')
    creds.write(HostCredentials(version="v1", accounts={"binance_01": ENTRY}, dirs=[str(mine), str(empty)]))
    assert json.loads((mine / "api-keys.json").read_text()) == {"their_own": {}}
    assert (empty / "api-keys.json").resolve() == creds.path.resolve()


def test_an_instance_id_that_escapes_the_state_dir_gets_no_link(tmp_path: Path) -> None:
    creds = _creds(tmp_path)
    creds.write(HostCredentials(version="v1", accounts={}, instances=["../../outside"]))
    assert not (tmp_path / "outside").exists()
