"""The files people run botfleet with point at things that exist: the compose file's build
context and Dockerfile, the Dockerfile's COPY sources, the scripts the Makefile and CI call,
and the example configs `botfleet demo` ships (with their licence)."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import yaml

from botfleet.fleet.demo_seed import DEMO_INSTANCES, load_demo_config

ROOT = Path(__file__).resolve().parents[2]


def test_compose_builds_from_files_that_exist() -> None:
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    builds = [s["build"] for s in compose["services"].values() if "build" in s]
    assert builds, "no service builds botfleet"
    for build in builds:
        context = (ROOT / "docker" / build["context"]).resolve()
        assert (context / build["dockerfile"]).is_file()
    assert {"api", "worker", "redis", "postgres"} <= set(compose["services"])


def test_dockerfile_copies_paths_that_exist() -> None:
    text = (ROOT / "docker" / "Dockerfile").read_text()
    # COPY --from=<stage> copies out of an earlier build stage, not from the source tree.
    sources = [word for line in re.findall(r"^COPY (.+)$", text, re.M) if not line.startswith("--from=")
               for word in line.split()[:-1]]
    assert sources
    for source in sources:
        assert (ROOT / source).exists(), source


def test_scripts_that_make_and_ci_call_exist_and_are_executable() -> None:
    for path in ("scripts/run.sh", "scripts/test.sh", ".ci/run"):
        assert os.access(ROOT / path, os.X_OK), path
    makefile = (ROOT / "Makefile").read_text()
    assert "bash scripts/run.sh" in makefile and "bash scripts/test.sh" in makefile


def test_demo_configs_are_passivbot_v8_examples_with_their_licence() -> None:
    for filename in DEMO_INSTANCES.values():
        document = load_demo_config(filename)
        original = json.loads((ROOT / "tests/data/passivbot/v8" / filename).read_text())
        assert document == original
    demo_dir = ROOT / "backend/botfleet/fleet/demo_configs"
    assert (demo_dir / "LICENSE.passivbot").read_text() == (
        ROOT / "tests/data/passivbot/LICENSE.passivbot"
    ).read_text()
