"""The panel's committed API client is generated from the api as it is now: the exported
OpenAPI document (frontend/openapi.json) and the TypeScript types openapi-typescript makes from
it (frontend/src/api/schema.ts). Regenerate both with:
``python scripts/export_openapi.py && (cd frontend && npm run gen:api)``."""

from __future__ import annotations

import importlib.util
import json
import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FRONTEND = ROOT / "frontend"
REGENERATE = "python scripts/export_openapi.py && (cd frontend && npm run gen:api)"


def _export_module():  # type: ignore[no-untyped-def]
    spec = importlib.util.spec_from_file_location("export_openapi", ROOT / "scripts" / "export_openapi.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_committed_openapi_document_matches_the_app() -> None:
    fresh = json.dumps(_export_module().openapi_document(), indent=2, sort_keys=True) + "\n"
    committed = (FRONTEND / "openapi.json").read_text()
    assert fresh == committed, f"frontend/openapi.json is stale: run {REGENERATE}"


def test_committed_typescript_client_matches_the_document(tmp_path: Path) -> None:
    tool = FRONTEND / "node_modules" / ".bin" / "openapi-typescript"
    if not tool.exists():
        pytest.fail("frontend/node_modules is missing: run `cd frontend && npm ci` (scripts/test.sh does it)")
    node = shutil.which("node")
    assert node, "node is not on PATH (Node 20 is needed for the panel)"
    doc = tmp_path / "openapi.json"
    doc.write_text(json.dumps(_export_module().openapi_document(), indent=2, sort_keys=True) + "\n")
    out = tmp_path / "schema.ts"
    subprocess.run([str(tool), str(doc), "-o", str(out)], check=True, capture_output=True, cwd=FRONTEND, timeout=120)
    assert out.read_text() == (FRONTEND / "src" / "api" / "schema.ts").read_text(), (
        f"frontend/src/api/schema.ts is stale: run {REGENERATE}"
    )
