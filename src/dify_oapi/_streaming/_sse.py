"""Server-sent event framing on bytes, by the rules httpx-sse follows.

Lines end at CRLF, LF or CR; a blank line ends an event; ``:`` starts a comment; a field's
value loses one leading space; ``data`` lines join with ``\\n``; ``id`` (without NUL) and
``retry`` (digits) are kept; a UTF-8 byte order mark at the start is dropped. An event that
is one ``data:`` line — all Dify sends, apart from pings — comes out as its payload bytes,
ready for msgspec; any other event comes out as an ``httpx_sse.ServerSentEvent``.

The framer is linear in the stream's size however it is cut: each byte is scanned once,
and an unfinished event waits in one growing buffer.
"""

from __future__ import annotations

import contextlib

from httpx_sse import ServerSentEvent

__all__ = ["EventTooLarge", "Framer"]

_BOM = b"\xef\xbb\xbf"


class EventTooLarge(Exception):
    """An event grew past the framer's cap; the stream turns it into ResponseTooLargeError."""


class Framer:
    """Cuts SSE events from body chunks; refuses an event that grows past ``cap`` bytes.

    The cap counts bytes after decompression, so a small compressed body cannot hide a huge
    event, and a server that never ends an event cannot exhaust memory.
    """

    __slots__ = (
        "_buf",
        "_cap",
        "_data",
        "_event",
        "_fields",
        "_id",
        "_retry",
        "_scan",
        "_size",
        "_started",
    )

    def __init__(self, cap: int) -> None:
        self._cap = cap
        self._buf = bytearray()  # the unfinished line, or lines not parsed yet
        self._scan = 0  # how far _buf has been searched for a line end
        self._started = False  # past the byte order mark check
        # The event being assembled.
        self._data: list[bytes] = []
        self._fields = 0  # lines in it other than single data lines (forces the slow path)
        self._event = ""
        self._id = ""
        self._retry: int | None = None
        self._size = 0

    def feed(self, chunk: bytes) -> list[bytes | ServerSentEvent]:
        if self._started and not self._data and not self._fields and 13 not in chunk:
            # The usual chunk is whole events of one data line each (several where they
            # queued up: a busy reader, a transport that hands over all it has), maybe with
            # the start of the next; the line parser would cost a third of an event's CPU.
            # Byte values, not one-byte strings: `13 in chunk` is a memchr.
            if not self._buf and chunk.find(b"\n") == len(chunk) - 2 and chunk[-1] == 10:
                if chunk[:5] == b"data:" and len(chunk) <= self._cap:
                    return [chunk[6:-2] if chunk[5] == 32 else chunk[5:-2]]
            else:
                events = self._whole_events(chunk)
                if events is not None:
                    return events
        buf = self._buf
        buf += chunk
        if not self._started:
            if len(buf) < 3 and _BOM.startswith(bytes(buf)):
                return []
            self._started = True
            if buf[:3] == _BOM:
                del buf[:3]
        return self._lines(final=False)

    def _whole_events(self, chunk: bytes) -> list[bytes | ServerSentEvent] | None:
        """The events that the unfinished line and ``chunk`` complete, one-data-line events
        cut here and any other passed through the line parser, in order; what follows the
        last of them is left to the line parser. ``None``: all of it is left to the line parser
        (no event ends in ``chunk``, a CR waits in the buffer, or it may pass the cap)."""
        end = chunk.rfind(b"\n\n") + 2
        buf = self._buf
        if end < 2 or 13 in buf:
            return None
        # No copy that is not needed: each one costs as much as a scan of the chunk.
        whole = chunk if end == len(chunk) else chunk[:end]
        if buf:
            whole = bytes(buf) + whole
        if len(whole) > self._cap:
            return None
        buf.clear()
        self._scan = self._size = 0
        events = whole.split(b"\n\n")
        events.pop()  # the empty piece after the last blank line
        out: list[bytes | ServerSentEvent]
        if whole.count(b"\n") == 2 * len(events) and all(e[:5] == b"data:" for e in events):
            out = [e[6:] if e[5:6] == b" " else e[5:] for e in events]
        else:
            out = []
            for e in events:
                if e[:5] == b"data:" and b"\n" not in e:
                    out.append(e[6:] if e[5:6] == b" " else e[5:])
                else:  # a ping, a comment, more lines: the blank line after it ends it
                    buf += e
                    buf += b"\n\n"
                    out += self._lines(final=False)
        if end < len(chunk):
            buf += chunk[end:]
            out += self._lines(final=False)
        return out

    def close(self) -> list[bytes | ServerSentEvent]:
        """Events completed by the end of the body (a final CR ends a line only here)."""
        return self._lines(final=True)

    def _lines(self, final: bool) -> list[bytes | ServerSentEvent]:
        buf = self._buf
        out: list[bytes | ServerSentEvent] = []
        start = 0
        scan = self._scan
        end = len(buf)
        while True:
            lf = buf.find(b"\n", scan)
            cr = buf.find(b"\r", scan, lf if lf >= 0 else end)
            if cr >= 0:
                if cr + 1 == end and not final:
                    scan = cr  # a CR at the end may be the first half of a CRLF
                    break
                stop, nxt = cr, cr + 2 if cr + 1 < end and buf[cr + 1] == 10 else cr + 1
            elif lf >= 0:
                stop, nxt = lf, lf + 1
            else:
                scan = end
                break
            event = self._line(buf, start, stop)
            if event is not None:
                out.append(event)
            start = scan = nxt
        if start:
            del buf[:start]
            scan -= start
        self._scan = scan
        if self._size + len(buf) > self._cap:
            raise EventTooLarge
        if final:
            buf.clear()  # an unterminated last event is dropped, as the SSE rules say
            self._scan = 0
        return out

    def _line(self, buf: bytearray, start: int, stop: int) -> bytes | ServerSentEvent | None:
        if start == stop:
            return self._dispatch()
        self._size += stop - start + 1
        if buf[start] == 58:  # ":" a comment
            return None
        colon = buf.find(b":", start, stop)
        if colon < 0:
            name, value = bytes(buf[start:stop]), b""
        else:
            name = bytes(buf[start:colon])
            first = colon + 2 if colon + 1 < stop and buf[colon + 1] == 32 else colon + 1
            value = bytes(buf[first:stop])
        if name == b"data":
            self._data.append(value)
            if len(self._data) > 1:
                self._fields += 1
        elif name == b"event":
            self._event = value.decode("utf-8", "replace")
            self._fields += 1
        elif name == b"id":
            if b"\0" not in value:
                self._id = value.decode("utf-8", "replace")
            self._fields += 1
        elif name == b"retry":
            with contextlib.suppress(ValueError):
                self._retry = int(value)
            self._fields += 1
        return None

    def _dispatch(self) -> bytes | ServerSentEvent | None:
        data, self._data = self._data, []
        self._size = 0
        fields, self._fields = self._fields, 0
        if not fields and len(data) == 1 and not self._id:
            return data[0]
        event, self._event = self._event, ""
        retry, self._retry = self._retry, None
        if not data and not event and not self._id and retry is None:
            return None
        text = b"\n".join(data).decode("utf-8", "replace")
        # As the SSE rules say, the last event id is kept for the events that follow.
        return ServerSentEvent(event=event, data=text, id=self._id, retry=retry)
