"""What one event batch costs the agent: a POST per batch vs a line of one streamed upload.

    .venv/bin/python scripts/bench/agent_upload.py [--batches 200] [--rate 40] [--bytes 800]

A litestar app under uvicorn (a subprocess, as the api runs) takes ``POST /one`` (a whole
body) and ``POST /upload`` (NDJSON read with ``request.stream()``, each line's delay from
its embedded send time recorded). The client (this process, uvloop + httpx, as the agent)
sends ``--batches`` bodies of ``--bytes`` each at ``--rate`` per second (0: back to back),
first as POSTs, then as lines of one upload, and reports its own CPU time per batch
(``time.process_time``) and, for the upload, the line's delay to the handler. A third pass
only sleeps at the same rate (``wake_only``): the timer wake-up every batch pays anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import subprocess
import sys
import time

import httpx
import uvloop
from common import wait_until

from botfleet.fleet.embedded_redis import free_port

SERVER = '''
import json, time
from typing import Any
from litestar import Litestar, Request, post
import uvicorn

@post("/one", status_code=200)
async def one(request: Request[Any, Any, Any]) -> dict:
    await request.body()
    return {}

@post("/upload", status_code=200, request_max_body_size=None)
async def upload(request: Request[Any, Any, Any]) -> dict:
    delays, pending = [], b""
    async for piece in request.stream():
        now = time.time()
        *lines, pending = (pending + piece).split(b"\\n")
        delays += [now - json.loads(line)["t"] for line in lines]
    delays.sort()
    return {"lines": len(delays), "p50_ms": 1000 * delays[len(delays) // 2],
            "p99_ms": 1000 * delays[max(0, int(len(delays) * 0.99) - 1)]}

uvicorn.run(Litestar([one, upload]), host="127.0.0.1", port=PORT, log_level="warning")
'''


async def measure(url: str, batches: int, rate: float, size: int) -> dict[str, object]:
    pad = "x" * size

    def body() -> bytes:
        return json.dumps({"t": time.time(), "pad": pad}).encode()

    async def pace() -> None:
        if rate:
            await asyncio.sleep(1 / rate)

    out: dict[str, object] = {}
    async with httpx.AsyncClient(base_url=url, timeout=60) as client:
        await client.post("/one", content=b"{}")  # connection up
        start = time.process_time()
        for _ in range(batches):
            await client.post("/one", content=body())
            await pace()
        out["post_ms_cpu"] = round(1000 * (time.process_time() - start) / batches, 3)

        async def lines():  # noqa: ANN202
            for _ in range(batches):
                yield body() + b"\n"
                await pace()

        start = time.process_time()
        reply = (await client.post("/upload", content=lines())).json()
        out["upload_line_ms_cpu"] = round(1000 * (time.process_time() - start) / batches, 3)
        out["upload_line_delay_ms"] = {k: round(v, 2) for k, v in reply.items() if k != "lines"}
        start = time.process_time()
        for _ in range(batches):
            body()
            await pace()
        out["wake_only_ms_cpu"] = round(1000 * (time.process_time() - start) / batches, 3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--batches", type=int, default=200)
    parser.add_argument("--rate", type=float, default=40.0)
    parser.add_argument("--bytes", type=int, default=800)
    args = parser.parse_args()
    port = free_port()
    server = subprocess.Popen([sys.executable, "-c", SERVER.replace("PORT", str(port))])
    url = f"http://127.0.0.1:{port}"
    try:
        def up() -> bool:
            try:
                return httpx.post(f"{url}/one", content=b"{}").status_code == 200
            except httpx.HTTPError:
                return False

        wait_until(up, 30, 0.1, "the server up")
        result = uvloop.run(measure(url, args.batches, args.rate, args.bytes))
    finally:
        server.terminate()
        server.wait(10)
    result.update(command=" ".join(sys.argv), rate=args.rate, loadavg=os.getloadavg())
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
