"""The agent's HTTP client to the api: one place for its authentication, TLS choice and
timeouts (used by the link, :mod:`botfleet.agent.link`, and the credentials fetch,
:mod:`botfleet.agent.credentials`)."""

from __future__ import annotations

import ssl

import httpx
import structlog

from botfleet.settings import AgentSettings

__all__ = ["CONNECT_TIMEOUT", "agent_token", "api_client"]

log = structlog.get_logger(__name__)

#: Seconds to open a TCP (and TLS) connection to the api. Short, so that after a network
#: cut the agent dials again at once instead of waiting out the kernel's SYN retransmission
#: backoff (1, 2, 4 ... s): the next attempt's SYN goes out within a second or two.
CONNECT_TIMEOUT = 2.0


def agent_token(settings: AgentSettings) -> str:
    """The host's token as sent (stripped); "" when unset (logged: the api will refuse it).

    Raises:
        ValueError: the token holds a line break or NUL (it cannot be a header value).
    """
    token = settings.agent_token.strip()
    if any(c in token for c in "\r\n\0"):
        raise ValueError("BOTFLEET_AGENT_TOKEN holds a line break or NUL: copy the host's "
                         "token again (it is shown when the host is created)")
    if not token:
        log.error("BOTFLEET_AGENT_TOKEN is not set: the api will refuse this agent until "
                  "it is (the host's token is shown when the host is created)")
    return token


def api_client(settings: AgentSettings, *, timeout: float = 10.0,
               limits: httpx.Limits | None = None) -> httpx.AsyncClient:
    """A client for ``settings.api_url`` sending ``Authorization: Bearer <agent token>``;
    ``timeout`` seconds for reads, writes and pool waits, :data:`CONNECT_TIMEOUT` to connect.

    Raises:
        ValueError: see :func:`agent_token`.
    """
    token = agent_token(settings)
    # httpx builds a TLS context for every client, by default with certifi's CA bundle
    # (~1 MiB of RSS). For an http:// api it is never used: give it one without CAs, which
    # would refuse any certificate (CERT_REQUIRED, check_hostname) if it ever were.
    https = settings.api_url.lower().startswith("https://")
    return httpx.AsyncClient(
        base_url=settings.api_url,
        verify=True if https else ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT),
        headers={"Authorization": f"Bearer {token}"} if token else {},
        timeout=httpx.Timeout(timeout, connect=CONNECT_TIMEOUT),
        limits=limits or httpx.Limits(),
    )
