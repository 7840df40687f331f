"""Write botfleet's OpenAPI document (JSON) by importing the app; no server, Redis or database
is touched (``create_app`` connects only in its lifespan).

Usage: ``python scripts/export_openapi.py [OUT]`` (default ``frontend/openapi.json``; ``-`` =
stdout). The panel's typed client (``frontend/src/api/schema.ts``) is generated from this file
by ``npm run gen:api`` (openapi-typescript); tests/unit/test_openapi_client_fresh.py fails when
the committed client is stale.
"""

from __future__ import annotations

import json
import sys
import warnings
from pathlib import Path
from typing import Any

__all__ = ["main", "openapi_document"]

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "frontend" / "openapi.json"


def openapi_document() -> dict[str, Any]:
    """The api's OpenAPI 3.1 document as a dict (litestar's ``openapi_schema.to_schema()``)."""
    # litestar 2.25 warns (DeprecationWarning) about parameter styles the api still uses; the
    # document is the same either way, and those warnings belong to the backend's own tests.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        from botfleet.api.app import create_app
        from botfleet.settings import Settings

        app = create_app(Settings(redis_url="redis://unused"))
        return app.openapi_schema.to_schema()


def main(argv: list[str]) -> int:
    out = argv[1] if len(argv) > 1 else str(DEFAULT_OUT)
    text = json.dumps(openapi_document(), indent=2, sort_keys=True) + "\n"
    if out == "-":
        sys.stdout.write(text)
    else:
        Path(out).write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
