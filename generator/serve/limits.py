"""uvicorn's HTTP protocols with a deadline for each request's headers and a cap on their size.

uvicorn times out only an idle keep-alive connection: a client that opens a connection and sends nothing,
or sends its headers a byte at a time, holds a connection and a file descriptor for as long as it likes.
A few hundred such connections (slowloris) use up the service's descriptors (systemd's default soft limit
is 1,024) and then nobody gets an answer. Here a connection must deliver a request's headers within the
deadline of opening or of the previous answer, or it is closed. The body has the same time once the
headers are in; the application enforces that (app.py `_read_body`), so it also holds under other ASGI
servers.

httptools (uvicorn's parser when installed) has no limit on the size of a request's headers: uvicorn keeps
them all, so one request with a 100 MB header took 340 MB of memory and was answered, and a few at once
use any amount. Here a head (request line and headers) that is still unfinished after `MAX_HEAD` bytes
(nginx's default cap is 32 KiB too) gets `431` and the connection is closed; a head that arrives whole in
one read is parsed, so at most one read (256 KiB) more is held. h11 has its own cap (16 KiB).
"""

from __future__ import annotations

import asyncio
from typing import Any, Protocol

from uvicorn.protocols.http.h11_impl import H11Protocol

REQUEST_TIMEOUT = 20.0  # seconds; a real request is one small packet (POX is about 350 bytes)
MAX_HEAD = 32 * 1024  # bytes of request line and headers; a browser's, cookies included, is a few KiB
_TOO_LARGE_TEXT = b"request headers are too large\n"
TOO_LARGE = (b"HTTP/1.1 431 Request Header Fields Too Large\r\ncontent-type: text/plain; charset=utf-8\r\n"
             b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(_TOO_LARGE_TEXT), _TOO_LARGE_TEXT))


class _Connection(Protocol):
    @property
    def cycle(self) -> Any: ...
    @property
    def transport(self) -> asyncio.Transport: ...
    @property
    def loop(self) -> asyncio.AbstractEventLoop: ...


class _Timer:
    """One connection's deadline: armed when it opens and after each answer. When it fires with no request
    in progress, the next request's line and headers are late and the connection is closed."""

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


class _WithDeadline:
    """The deadline, for either of uvicorn's protocols (listed first among the bases: these call on to it)."""

    request_timeout = REQUEST_TIMEOUT
    deadline: _Timer

    def connection_made(self, transport: asyncio.Transport) -> None:
        super().connection_made(transport)  # type: ignore[misc]
        self.deadline = _Timer()
        self.deadline.arm(self, self.request_timeout)  # type: ignore[arg-type]

    def on_response_complete(self) -> None:
        super().on_response_complete()  # type: ignore[misc]
        self.deadline.arm(self, self.request_timeout)  # type: ignore[arg-type]

    def connection_lost(self, exc: Exception | None) -> None:
        self.deadline.cancel()
        super().connection_lost(exc)  # type: ignore[misc]


class H11WithDeadline(_WithDeadline, H11Protocol):  # type: ignore[misc]
    pass


AUTO: type[asyncio.Protocol] = H11WithDeadline
try:
    from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol
except ImportError:  # uvicorn without httptools: h11, as uvicorn's own "auto" would choose
    pass
else:
    class HttpToolsWithDeadline(_WithDeadline, HttpToolsProtocol):  # type: ignore[misc]
        in_head = True  # between requests, or inside a request's line and headers
        head_bytes = 0  # of the head being read
        head_began = False  # the head began inside the data just parsed, after the end of a message

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            if self.head_began:  # this data is mostly the message before: its head's bytes are not counted
                self.head_began = False
            elif self.in_head and not self.transport.is_closing():  # this data ended inside a head
                self.head_bytes += len(data)
                if self.head_bytes > MAX_HEAD:
                    self.deadline.cancel()
                    self.transport.write(TOO_LARGE)
                    self.transport.close()

        def on_headers_complete(self) -> None:
            self.in_head = False
            super().on_headers_complete()

        def on_message_complete(self) -> None:
            super().on_message_complete()
            self.in_head, self.head_bytes, self.head_began = True, 0, True

    AUTO = HttpToolsWithDeadline


def http_protocol(seconds: float) -> type[asyncio.Protocol]:
    """uvicorn's "auto" HTTP protocol (httptools when installed, else h11) with these limits and a `seconds`
    deadline."""
    return type(AUTO.__name__, (AUTO,), {"request_timeout": seconds})
