"""Server-Sent Events decoding for the agent's command stream: the parsing rules of the WHATWG
HTML standard, section 9.2.6 "Interpreting an event stream" (fields ``event``, ``data``,
``id``, ``retry``; ``:`` comments such as pings; CR, LF or CRLF line ends).

Why our own: the SSE parsers on PyPI come bound to an HTTP client (httpx-sse imports httpx,
which the agent no longer loads: ~8 MiB of resident memory) or read a blocking iterator
(sseclient-py); the agent reads the stream through :class:`botfleet.agent.http.HttpConnection`.
"""

from __future__ import annotations

import codecs
from dataclasses import dataclass

__all__ = ["SSEDecoder", "ServerSentEvent"]


@dataclass(frozen=True, slots=True)
class ServerSentEvent:
    """One dispatched event: ``event`` type (``"message"`` when the stream named none),
    ``data`` (lines joined with ``\\n``), ``id`` (the last event id so far, ``""`` if none),
    ``retry`` (reconnection time in ms when this event set one)."""

    event: str
    data: str
    id: str
    retry: int | None = None


class SSEDecoder:
    """Incremental decoder: :meth:`feed` pieces of the response body as they arrive (split
    anywhere, even inside a UTF-8 character or a CRLF), get the complete events."""

    def __init__(self) -> None:
        self._text = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending: list[str] = []  # pieces of an unfinished line (a sync can be MBs long)
        self._started = False
        self._event = ""
        self._data: list[str] = []
        self._last_id = ""
        self._retry: int | None = None

    def feed(self, chunk: bytes) -> list[ServerSentEvent]:
        """Decode ``chunk``; returns the events it completed (in order)."""
        text = self._text.decode(chunk)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")
        if "\n" not in text and "\r" not in text[:-1]:
            self._pending.append(text)  # no line ends here (a CR at the end may start a CRLF)
            return []
        text = "".join(self._pending) + text
        # A CR at the very end may be the first half of a CRLF: keep it for the next chunk.
        hold = text.endswith("\r")
        lines = (text[:-1] if hold else text).replace("\r\n", "\n").replace("\r", "\n")
        *complete, rest = lines.split("\n")
        self._pending = [rest + ("\r" if hold else "")]
        events: list[ServerSentEvent] = []
        for line in complete:
            if not line:
                if self._data:
                    events.append(ServerSentEvent(self._event or "message",
                                                  "\n".join(self._data), self._last_id,
                                                  self._retry))
                self._event, self._data, self._retry = "", [], None
                continue
            name, colon, value = line.partition(":")
            if not name:
                continue  # a comment (the api's pings)
            if colon and value.startswith(" "):
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\0" not in value:
                    self._last_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                self._retry = int(value)
        return events
