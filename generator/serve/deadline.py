"""uvicorn's HTTP protocols with a deadline for each request's headers.

uvicorn times out only an idle keep-alive connection: a client that opens a connection and sends nothing,
or sends its headers a byte at a time, holds a connection and a file descriptor for as long as it likes.
A few hundred such connections (slowloris) use up the service's descriptors (systemd's default soft limit
is 1,024) and then nobody gets an answer. Here a connection must deliver a request's headers within the
deadline of opening or of the previous answer, or it is closed. The body has the same time once the
headers are in; the application enforces that (app.py `_read_body`), so it also holds under other ASGI
servers.
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_TIMEOUT = 20.0  # seconds; a real request is one small packet (POX is about 350 bytes)


class _Connection(Protocol):
    @property
    def cycle(self) -> Any: ...
    @property
    def transport(self) -> asyncio.Transport: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...


class _Timer:
    """One connection's deadline: armed when it opens and after each answer. When it fires with no request
    in progress, the next request's headers are late and the connection is closed."""

    def __init__(self) -> None:
        self.handle: asyncio.TimerHandle | None = None

    def arm(self, connection: _Connection, seconds: float) -> None:
        self.cancel()
        self.handle = connection.loop.call_later(seconds, self._expire, connection)

    def cancel(self) -> None:
        if self.handle is not None:
            self.handle.cancel()
            self.handle = None

    @staticmethod
    def _expire(connection: _Connection) -> None:
        cycle = connection.cycle
        if cycle is None or cycle.response_complete:
            connection.transport.close()


class H11WithDeadline(H11Protocol):
    request_timeout = REQUEST_TIMEOUT
    deadline: _Timer

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self.deadline = _Timer()
        self.deadline.arm(self, self.request_timeout)

    def on_response_complete(self) -> None:
        super().on_response_complete()
        self.deadline.arm(self, self.request_timeout)

    def connection_lost(self, exc: Exception | None) -> None:
        self.deadline.cancel()
        super().connection_lost(exc)


AUTO: type[asyncio.Protocol] = H11WithDeadline
try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # uvicorn without httptools: h11, as uvicorn's own "auto" would choose
    pass
else:
    class HttpToolsWithDeadline(HttpToolsProtocol):
        request_timeout = REQUEST_TIMEOUT
        deadline: _Timer

        def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self.deadline = _Timer()
            self.deadline.arm(self, self.request_timeout)

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self.deadline.arm(self, self.request_timeout)

        def connection_lost(self, exc: Exception | None) -> None:
            self.deadline.cancel()
            super().connection_lost(exc)

    AUTO = HttpToolsWithDeadline


def http_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's "auto" HTTP protocol (httptools when installed, else h11) with a `seconds` deadline."""
    return type(AUTO.__name__, (AUTO,), {"request_timeout": seconds})
