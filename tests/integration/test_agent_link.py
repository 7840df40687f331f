"""The dial-in link against a real HTTP server (uvicorn + starlette + sse-starlette) that
speaks the agent protocol's three endpoints with a few lines each: announce, the command
stream (SSE with Last-Event-ID) and the event upload (NDJSON batches taken as they arrive,
deduplicated by run_id/seq)."""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import pytest
import uvicorn
from sse_starlette.sse import AppStatus, EventSourceResponse
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from botfleet.agent.main import serve
from botfleet.agent.testing import python_bot
from botfleet.protocol import (
    Announce,
    AnnounceReply,
    ApplyCommand,
    EventBatch,
    EventBatchReply,
    InstanceState,
    LogLines,
    MetricsEvent,
    ProcessSpec,
    StateChange,
    StopStep,
)
from botfleet.settings import AgentSettings

TOKEN = "test-token"


@dataclass
class FakeApi:
    """Just enough of the api's agent endpoints; records what the agent sent."""

    announces: list[Announce] = field(default_factory=list)
    batches: list[EventBatch] = field(default_factory=list)
    stream_headers: list[str | None] = field(default_factory=list)
    commands: list[tuple[str, str]] = field(default_factory=list)
    new_command: asyncio.Event = field(default_factory=asyncio.Event)
    changed: asyncio.Event = field(default_factory=asyncio.Event)
    seen: set[tuple[str, int]] = field(default_factory=set)
    uploads_ended: int = 0
    resent: int = 0
    drop_stream_after_first: bool = True

    def push(self, command: ApplyCommand) -> None:
        self.commands.append((f"{len(self.commands) + 1}-0", command.model_dump_json()))
        self.new_command.set()

    def _authorized(self, request: Request) -> bool:
        return request.headers.get("authorization") == f"Bearer {TOKEN}"

    async def announce(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response(status_code=401)
        self.announces.append(Announce.model_validate_json(await request.body()))
        self.changed.set()
        reply = AnnounceReply(host_id="h1", server_time=datetime.now(UTC), resume_from="0-0")
        return Response(reply.model_dump_json(), media_type="application/json")

    async def command_stream(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response(status_code=401)
        last = request.headers.get("last-event-id")
        self.stream_headers.append(last)
        self.changed.set()
        start = int(last.split("-")[0]) if last else 0
        first_connection = len(self.stream_headers) == 1

        async def events() -> AsyncIterator[dict[str, str]]:
            index = start
            while True:
                while index < len(self.commands):
                    cid, data = self.commands[index]
                    index += 1
                    yield {"event": "command", "id": cid, "data": data}
                    if first_connection and self.drop_stream_after_first:
                        return  # a dropped connection: the agent must resume after cid
                self.new_command.clear()
                await self.new_command.wait()

        return EventSourceResponse(events(), ping=1)

    async def events(self, request: Request) -> Response:
        if not self._authorized(request):
            return Response(status_code=401)
        accepted, last_seq, pending = 0, 0, b""
        async for piece in request.stream():
            *lines, pending = (pending + piece).split(b"\n")
            for line in lines:
                batch = EventBatch.model_validate_json(line)
                key = (batch.run_id, batch.seq)
                last_seq = max(last_seq, batch.seq)
                if key in self.seen:
                    self.resent += 1
                    continue
                accepted += 1
                self.seen.add(key)
                self.batches.append(batch)
                self.changed.set()
        self.uploads_ended += 1
        reply = EventBatchReply(accepted=accepted, last_seq=last_seq)
        return JSONResponse(json.loads(reply.model_dump_json()))

    def app(self) -> Starlette:
        return Starlette(routes=[
            Route("/api/v1/agent/announce", self.announce, methods=["POST"]),
            Route("/api/v1/agent/commands", self.command_stream, methods=["GET"]),
            Route("/api/v1/agent/events", self.events, methods=["POST"]),
        ])

    async def wait(self, predicate: object, timeout: float = 20.0) -> None:
        async with asyncio.timeout(timeout):
            while not predicate():  # type: ignore[operator]
                self.changed.clear()
                await self.changed.wait()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
async def api() -> AsyncIterator[tuple[FakeApi, str]]:
    AppStatus.should_exit = False
    fake = FakeApi()
    port = _free_port()
    server = uvicorn.Server(uvicorn.Config(fake.app(), host="127.0.0.1", port=port,
                                           log_level="warning", lifespan="off"))
    task = asyncio.create_task(server.serve())
    while not server.started:
        await asyncio.sleep(0.01)
    yield fake, f"http://127.0.0.1:{port}"
    server.should_exit = True
    fake.new_command.set()
    await asyncio.wait_for(task, 10)
    AppStatus.should_exit = False


async def test_agent_announces_follows_commands_and_streams_events(
    api: tuple[FakeApi, str], tmp_path: Path
) -> None:
    fake, url = api
    settings = AgentSettings(home=tmp_path, api_url=url, agent_token=TOKEN, agent_host="vps1",
                             heartbeat_interval=0.2)
    stop = asyncio.Event()
    agent = asyncio.create_task(serve(settings, stop))
    await fake.wait(lambda: fake.announces and fake.stream_headers)
    announce = fake.announces[0]
    assert announce.host == "vps1" and announce.instances == [] and announce.metrics is not None
    assert fake.stream_headers[0] == "0-0"  # AnnounceReply.resume_from

    spec = ProcessSpec(argv=python_bot("import time\nfor i in range(3): print('hello', i)\n"
                                       "time.sleep(60)"), startsecs=0.1,
                       stop_ladder=[StopStep(signal="SIGKILL", timeout=5)])
    fake.push(ApplyCommand(instance_id="i1", generation=1, desired="running", spec=spec))

    def events() -> list[object]:
        return [e for b in fake.batches for e in b.events]

    def states() -> list[str]:
        return [e.new.value for e in events() if isinstance(e, StateChange)]

    def lines() -> list[str]:
        return [t for e in events() if isinstance(e, LogLines) for t in e.lines]

    await fake.wait(lambda: "RUNNING" in states() and len(lines()) == 3)
    assert fake.uploads_ended == 0  # all of it arrived on one upload that is still open
    assert lines()[0].endswith("Z hello 0")
    first_log = next(e for e in events() if isinstance(e, LogLines))
    assert first_log.instance_id == "i1" and first_log.first_seq == 1
    await fake.wait(lambda: any(isinstance(e, MetricsEvent) for e in events()))
    # The first stream was dropped after command 1-0: the agent resumed after it.
    await fake.wait(lambda: len(fake.stream_headers) >= 2)
    assert fake.stream_headers[1] == "1-0"
    # A command on the resumed stream is applied (the stop).
    fake.push(ApplyCommand(instance_id="i1", generation=2, desired="stopped", spec=spec))
    await fake.wait(lambda: "STOPPED" in states())
    # Batches are numbered 1, 2, 3... within one run.
    seqs = [b.seq for b in fake.batches]
    assert seqs == list(range(1, len(seqs) + 1))
    assert {b.run_id for b in fake.batches} == {announce.run_id}
    stop.set()
    await asyncio.wait_for(agent, 10)


class Cable:
    """A TCP forwarder between the agent and the api that can be cut: :meth:`cut` drops every
    connection and refuses new ones (the api is down or the network is), :meth:`mend` lets
    them through again. :meth:`freeze` stops every open connection without closing it (what
    a network cut looks like to TCP) while new connections go through."""

    def __init__(self, target_port: int) -> None:
        self.target_port = target_port
        self.port = _free_port()
        self.connections = 0
        self._server: asyncio.Server | None = None
        self._writers: set[asyncio.StreamWriter] = set()
        self._frozen: set[asyncio.Future[None]] = set()

    def freeze(self) -> None:
        for gate in self._frozen:
            gate.cancel()

    async def mend(self) -> None:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", self.port)

    async def cut(self) -> None:
        assert self._server is not None
        self._server.close()
        for writer in list(self._writers):
            writer.transport.abort()
        await self._server.wait_closed()

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        up_reader, up_writer = await asyncio.open_connection("127.0.0.1", self.target_port)
        self._writers |= {writer, up_writer}
        gate: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._frozen.add(gate)

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except ConnectionError:
                pass
            dst.transport.abort()  # not when cancelled by a freeze: that leaves it open

        pipes = asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        await asyncio.wait({pipes, gate}, return_when=asyncio.FIRST_COMPLETED)
        if gate.cancelled():  # frozen: neither side hears anything more, nothing is closed
            pipes.cancel()
            await asyncio.Event().wait()
        self._frozen.discard(gate)
        self._writers -= {writer, up_writer}


def _lines(fake: FakeApi) -> list[str]:
    """The counting bot's lines the fake api took, in order, without their timestamps."""
    return [t.split(" ", 1)[1] for b in fake.batches for e in b.events
            if isinstance(e, LogLines) for t in e.lines]


@contextlib.asynccontextmanager
async def _counting_bot_behind_cable(api: tuple[FakeApi, str], tmp_path: Path, count: int) -> AsyncIterator[Cable]:
    """An agent that reaches the fake api through a :class:`Cable`, running one bot that
    prints ``line 1`` .. ``line <count>`` (20 a second) and then sleeps; stopped on exit."""
    fake, url = api
    fake.drop_stream_after_first = False
    cable = Cable(int(url.rsplit(":", 1)[1]))
    await cable.mend()
    settings = AgentSettings(home=tmp_path, api_url=f"http://127.0.0.1:{cable.port}",
                             agent_token=TOKEN, agent_host="vps1", heartbeat_interval=0.2)
    stop = asyncio.Event()
    agent = asyncio.create_task(serve(settings, stop))
    spec = ProcessSpec(argv=python_bot(f"import time\nfor i in range(1, {count + 1}):\n"
                                       "    print('line', i, flush=True); time.sleep(0.05)\n"
                                       "time.sleep(60)"),
                       startsecs=0.1, stop_ladder=[StopStep(signal="SIGKILL", timeout=5)])
    fake.push(ApplyCommand(instance_id="i1", generation=1, desired="running", spec=spec))
    try:
        yield cable
    finally:
        stop.set()
        await asyncio.wait_for(agent, 10)
        await cable.cut()


async def test_lines_written_while_the_api_is_down_arrive_once_when_it_is_back(
    api: tuple[FakeApi, str], tmp_path: Path,
) -> None:
    fake, _ = api
    async with _counting_bot_behind_cable(api, tmp_path, 60) as cable:
        await fake.wait(lambda: len(_lines(fake)) >= 5)
        await cable.cut()  # in the middle of an upload
        assert len(_lines(fake)) < 60
        await asyncio.sleep(1.5)  # the bot goes on writing
        await cable.mend()
        await fake.wait(lambda: len(_lines(fake)) >= 60, timeout=30)
        assert _lines(fake) == [f"line {i}" for i in range(1, 61)]  # none lost, none twice
        assert fake.resent > 0  # batches of the broken upload were sent again, and ignored
        seqs = [b.seq for b in fake.batches]
        assert seqs == list(range(1, len(seqs) + 1))


async def test_a_silent_link_is_dropped_and_dialed_again_on_new_connections(
    api: tuple[FakeApi, str], tmp_path: Path,
) -> None:
    """A network cut leaves TCP connections open with nothing arriving: the agent notices
    the command stream's silence (no ping for protocol.COMMAND_SILENCE seconds), drops every
    connection of that dial (the stuck event upload too) and dials again, announcing first
    and resuming the command stream where it was; lines written meanwhile arrive once."""
    fake, _ = api
    async with _counting_bot_behind_cable(api, tmp_path, 200) as cable:
        await fake.wait(lambda: len(_lines(fake)) >= 5)
        assert len(fake.announces) == 1 and fake.stream_headers == ["0-0"]
        cable.freeze()
        await fake.wait(lambda: len(fake.announces) == 2, timeout=60)
        run_ids = {a.run_id for a in fake.announces}
        assert len(run_ids) == 1  # the same agent run, dialing again
        await fake.wait(lambda: len(fake.stream_headers) == 2)
        assert fake.stream_headers[1] == "1-0"  # resumed after the command it had applied
        assert [(i.instance_id, i.state) for i in fake.announces[1].instances] == [
            ("i1", InstanceState.RUNNING)]  # the bot ran on, untouched by the link's loss
        await fake.wait(lambda: len(_lines(fake)) >= 200, timeout=60)
        assert _lines(fake) == [f"line {i}" for i in range(1, 201)]  # none lost, none twice
