"""The API key, held so that no repr, traceback or pickle shows it."""

from __future__ import annotations

from typing import Any, NoReturn

__all__ = ["Secret", "mask"]

_MASK = "***"


class Secret:
    """A key whose ``repr`` and ``str`` are masked; :meth:`reveal` gives the value.

    Traceback printers that show local variables (rich, Sentry) see ``Secret('***')``, and
    pickling refuses, so a key never travels into a result store by accident.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return f"Secret({_MASK!r})"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> NoReturn:
        raise TypeError("an API key is not pickled")


def mask(value: Any, secret: Secret | None) -> Any:
    """``value`` (text, bytes, or containers of them) with the secret's value masked."""
    if secret is None:
        return value
    key = secret.reveal()
    if isinstance(value, str):
        return value.replace(key, _MASK) if key in value else value
    if isinstance(value, (bytes, bytearray)):
        raw = key.encode()
        return bytes(value).replace(raw, _MASK.encode()) if raw in value else value
    if isinstance(value, dict):
        return {mask(k, secret): mask(v, secret) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return type(value)(mask(v, secret) for v in value)
    return value
