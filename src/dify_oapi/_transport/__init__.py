"""Carrying requests: the shared pool, concurrency slots, sending, and reading bodies.

- :mod:`._pool`: the httpx client a client and its copies share, valid across forks and
  event loops.
- :mod:`._slots`: fair concurrency slots (threads and tasks).
- :mod:`._send`: one request on a pool, its answer's head and, unless it streams, its body.
- :mod:`._head`: the call's deadline over the head of an answer on the sync transports.
- :mod:`._body`: bounded decoding, size caps, and the one lease that gives a connection back.
- :mod:`._errors`: httpx's failures as the SDK's typed errors.
"""

from ._body import ACCEPT_ENCODING, Lease
from ._errors import transport_error
from ._pool import Pool
from ._send import Answer, Send, asend, send

__all__ = [
    "ACCEPT_ENCODING",
    "Answer",
    "Lease",
    "Pool",
    "Send",
    "asend",
    "send",
    "transport_error",
]
