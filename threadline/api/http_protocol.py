"""uvicorn's httptools protocol, with a cap on request heads and a deadline for reading a request.

uvicorn (to 0.55) gives its httptools protocol neither: a head of any size or number of
headers is gathered, and a connection that trickles a byte now and then is kept forever (its
keep-alive timeout runs only between requests, and not at all before the first). Only its h11
protocol bounds a head (`h11_max_incomplete_event_size`), and answers 400 rather than 431,
at h11's much higher CPU cost per request. So this subclass does what a front proxy would:

- **Head size and count.** The request target and each header are counted as the parser
  hands them over (`on_url`, `on_header`: name, value and 4 bytes for `": "` and CRLF); past
  `max_head_bytes` or `max_header_count` the answer is 431 and the connection closes. The
  parser hands over a header only once it has all of it, so the bytes received while a head
  is incomplete are counted too, and past twice the cap the head is refused without waiting
  for the header to end: no head is ever held beyond that.
- **Read deadline.** A request's head and body must arrive within `read_timeout` seconds of
  its first byte (for a new connection, of the connection opening). At the deadline a request
  that had begun is answered 408 and its connection closed; a connection that sent nothing is
  closed quietly (a client may be about to use it, and an answer it did not ask for would be
  read as the answer to its next request). Time when the server itself stops reading (uvicorn
  pauses a connection whose app is slow to take the body, or that pipelines) does not count
  against the client. Idle keep-alive between requests stays uvicorn's own timer.

Answers here are written below the app, with the body `api.errors` writes for every other
refusal.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import httptools
from uvicorn.config import Config
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol
from uvicorn.server import ServerState

from threadline.api.errors import error_body


class HeadTooLarge(Exception):
    """Raised from a parser callback to stop the parser; answered 431."""


class LimitedHttpToolsProtocol(HttpToolsProtocol):
    max_head_bytes: ClassVar[int] = 64 * 1024
    max_header_count: ClassVar[int] = 100
    read_timeout: ClassVar[float] = 30.0

    def __init__(
        self,
        config: Config,
        server_state: ServerState,
        app_state: dict[str, Any],
        _loop: asyncio.AbstractEventLoop | None = None,
    ) -> None:
        super().__init__(config, server_state, app_state, _loop)
        self.head_bytes = 0  # the current head's size as counted against the cap
        self.unparsed_head_bytes = 0  # bytes received while the current head is incomplete
        self.header_count = 0
        self.head_complete = False
        self.request_begun = False
        self.read_deadline: asyncio.TimerHandle | None = None
        self.linger: asyncio.TimerHandle | None = None

    # -- connection ----------------------------------------------------------------------

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        super().connection_made(transport)
        self._arm_read_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_read_deadline()
        if self.linger is not None:
            self.linger.cancel()
            self.linger = None
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        """uvicorn's own, but a head refused by a callback is answered 431, not 400."""
        if self.linger is not None:
            return  # a refused request's remainder: dropped until the connection closes
        self._unset_keepalive_if_required()
        if not self.request_begun:
            # Bytes that begin no request (the blank lines the parser skips) stop the
            # keep-alive timer: the read deadline runs instead, or trickling them would hold
            # the connection forever.
            self._arm_read_deadline()
        if not self.head_complete:
            self.unparsed_head_bytes += len(data)
        try:
            self.parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if isinstance(exc.__context__, HeadTooLarge):
                self._refuse_head(str(exc.__context__))
                return
            message = "Invalid HTTP request received."
            self.logger.warning(message)
            self.send_400_response(message)
            return
        except httptools.HttpParserUpgrade:
            if self._should_upgrade():
                self.handle_websocket_upgrade()
            else:
                self._unsupported_upgrade_warning()
            return
        if not self.head_complete and self.unparsed_head_bytes > 2 * self.max_head_bytes:
            self._refuse_head(self._too_large())

    # -- parser callbacks ----------------------------------------------------------------

    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.head_bytes = 0
        self.header_count = 0
        self.head_complete = False
        self.request_begun = True
        self._arm_read_deadline()

    def on_url(self, url: bytes) -> None:
        self._count_head(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self.header_count += 1
        if self.header_count > self.max_header_count:
            raise HeadTooLarge(
                f"The request has more than {self.max_header_count} headers "
                "(THREADLINE_MAX_HEADER_COUNT)."
            )
        self._count_head(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_headers_complete(self) -> None:
        self.head_complete = True
        super().on_headers_complete()

    def on_message_complete(self) -> None:
        super().on_message_complete()
        self._disarm_read_deadline()
        self.request_begun = False
        self.head_complete = False
        self.unparsed_head_bytes = 0

    # -- limits --------------------------------------------------------------------------

    def _count_head(self, size: int) -> None:
        self.head_bytes += size
        if self.head_bytes > self.max_head_bytes:
            raise HeadTooLarge(self._too_large())

    def _too_large(self) -> str:
        return (
            f"The request's headers are larger than the {self.max_head_bytes} bytes this "
            "server accepts (THREADLINE_MAX_HEADER_BYTES)."
        )

    def _refuse_head(self, message: str) -> None:
        """431, then the answer's end is marked (FIN) and what the client still sends is read
        and dropped until it closes, or at most the read deadline: closing with its bytes
        unread would reset the connection before the client read the answer."""
        self._disarm_read_deadline()
        if self.transport.is_closing():
            return
        if not self._response_in_flight():
            self._write_error(431, message, "headers_too_large")
        if self.transport.can_write_eof():
            self.transport.write_eof()
        self.flow.resume_reading()
        self.linger = self.loop.call_later(self.read_timeout, self.transport.close)

    # -- read deadline -------------------------------------------------------------------

    def _arm_read_deadline(self) -> None:
        if self.read_deadline is None:
            self.read_deadline = self.loop.call_later(self.read_timeout, self._on_read_deadline)

    def _disarm_read_deadline(self) -> None:
        if self.read_deadline is not None:
            self.read_deadline.cancel()
            self.read_deadline = None

    def _on_read_deadline(self) -> None:
        self.read_deadline = None
        if self.transport.is_closing():
            return
        if self.flow.read_paused:
            self._arm_read_deadline()  # the server is not reading: the client is not late
            return
        if not self.request_begun:
            self.transport.close()  # nothing sent: nothing to answer
            return
        if self._response_in_flight():
            pass  # an answer is on its way on this connection: one more would corrupt it
        elif not self.head_complete:
            self._write_error(408, self._late(), "request_timeout")
        elif not self.cycle.response_started:
            # The app is waiting for the body: it now reads a disconnect, and what it
            # answers is dropped (uvicorn writes nothing for a disconnected cycle).
            self.cycle.disconnected = True
            self.cycle.message_event.set()
            self._write_error(408, self._late(), "request_timeout")
        self.transport.close()

    def _late(self) -> str:
        return (
            f"The request did not arrive whole within {self.read_timeout:g} seconds "
            "(THREADLINE_REQUEST_READ_TIMEOUT_SECONDS)."
        )

    # -- answers -------------------------------------------------------------------------

    def _response_in_flight(self) -> bool:
        """An earlier request's answer is still being written (or one waits, pipelined)."""
        if self.head_complete:  # `cycle` is this request's: it waits behind any earlier one
            return bool(self.pipeline)
        return bool(self.pipeline) or (self.cycle is not None and not self.cycle.response_complete)

    def _write_error(self, status: int, message: str, code: str) -> None:
        body = error_body(message, "invalid_request_error", None, code)
        head = [STATUS_LINE[status]]
        for name, value in self.server_state.default_headers:
            head += [name, b": ", value, b"\r\n"]
        head += [
            b"content-type: application/json\r\n",
            b"content-length: %d\r\n" % len(body),
            b"connection: close\r\n\r\n",
        ]
        self.transport.write(b"".join(head) + body)


def configured_protocol(
    max_head_bytes: int, max_header_count: int, read_timeout: float
) -> type[LimitedHttpToolsProtocol]:
    """The protocol class for `uvicorn.run(http=...)`, which instantiates it itself."""

    class Configured(LimitedHttpToolsProtocol):
        pass

    Configured.max_head_bytes = max_head_bytes
    Configured.max_header_count = max_header_count
    Configured.read_timeout = read_timeout
    return Configured
