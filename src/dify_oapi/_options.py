"""Client and call options, declared once.

The TypedDicts give each option's type to type checkers (the constructors and
``with_options`` take ``**options: Unpack[...]``), to the stub generator and to the docs;
:data:`OPTIONS` gives its default, where it may be given and how it is checked. The
constructors, ``with_options``, per-call keywords and the command line all read these.
"""

from __future__ import annotations

import os
import ssl
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal, TypedDict

import httpx

from ._exceptions import ConfigurationError
from ._headers import check_header
from ._secret import Secret

if TYPE_CHECKING:
    from ._hooks import Hooks

__all__ = [
    "CALL_OPTIONS",
    "OPTIONS",
    "AsyncClientOptions",
    "CallOptions",
    "ClientOptions",
    "Config",
    "CopyOptions",
    "Option",
    "build_config",
]

DEFAULT_BASE_URL = "https://api.dify.ai/v1"
DEFAULT_TIMEOUT = httpx.Timeout(connect=5.0, read=120.0, write=60.0, pool=30.0)
DEFAULT_LIMITS = httpx.Limits(
    max_connections=100, max_keepalive_connections=20, keepalive_expiry=30.0
)
DEFAULT_MAX_RETRIES = 2
MAX_JSON_BYTES = 32 * 1024 * 1024
MAX_ERROR_BYTES = 64 * 1024
MAX_EVENT_BYTES = 8 * 1024 * 1024
MAX_BINARY_BYTES = 256 * 1024 * 1024
#: The environment variables a client reads when the option is not given.
KEY_ENV = "DIFY_API_KEY"
URL_ENV = "DIFY_BASE_URL"

TimeoutTypes = float | httpx.Timeout


class _Shared(TypedDict, total=False):
    # None, for any option, means "not given": the default (or the environment) applies.
    api_key: str | None
    base_url: str | None
    timeout: TimeoutTypes
    max_retries: int
    default_headers: Mapping[str, str]
    deadline: float | None
    idle_timeout: float | None
    max_json_bytes: int
    max_error_bytes: int
    max_event_bytes: int
    max_binary_bytes: int


class _PoolOptions(_Shared, total=False):
    limits: httpx.Limits
    verify: bool | str | ssl.SSLContext
    follow_redirects: bool
    extra_endpoints: Iterable[str | os.PathLike[str]] | str | os.PathLike[str]
    hooks: Hooks


class ClientOptions(_PoolOptions, total=False):
    """Keyword options of :class:`~dify_oapi.Client`."""

    http_client: httpx.Client
    transport: httpx.BaseTransport
    backend: Literal["httpx", "urllib3"]


class AsyncClientOptions(_PoolOptions, total=False):
    """Keyword options of :class:`~dify_oapi.AsyncClient`."""

    http_client: httpx.AsyncClient
    transport: httpx.AsyncBaseTransport
    backend: Literal["httpx", "aiohttp"]


class CopyOptions(_Shared, total=False):
    """Keyword options of ``with_options``: a copy that shares the connection pool."""


class CallOptions(TypedDict, total=False):
    """Options every operation method takes besides the request's fields."""

    api_key: str
    timeout: TimeoutTypes
    max_retries: int
    extra_headers: Mapping[str, str]
    retry_unsafe: bool
    deadline: float | None
    idle_timeout: float | None


@dataclass(frozen=True)
class Option:
    """One option: its default, its help text and where it may be given.

    ``where``: ``client`` (both constructors), ``async`` (``AsyncClient`` only), ``copy``
    (``with_options``), ``call`` (per call). ``check`` turns a given value into the stored
    one or raises :class:`~dify_oapi.ConfigurationError`.
    """

    name: str
    default: Any
    doc: str
    where: frozenset[str]
    check: Callable[[Any], Any] | None = None
    cli: bool = False


def _normalize_base_url(url: Any) -> str:
    if not isinstance(url, str):
        raise ConfigurationError(f"base_url must be a string, got {type(url).__name__}")
    try:
        parsed = httpx.URL(url.strip())
    except (httpx.InvalidURL, TypeError, AttributeError) as exc:
        raise ConfigurationError(f"base_url is not a valid URL: {exc}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise ConfigurationError(
            f"base_url must be an absolute http(s) URL such as {DEFAULT_BASE_URL!r}, got {url!r}"
        )
    if parsed.query or parsed.fragment:
        raise ConfigurationError("base_url must not have a query or fragment")
    text = str(parsed.copy_with(query=None, fragment=None)).rstrip("/")
    # The Service API always lives under /v1; a bare host means its default location.
    if parsed.path in ("", "/"):
        text += "/v1"
    return text


def check_api_key(key: Any) -> Secret:
    """A given key as a :class:`Secret`, refused if it cannot be sent in a header."""
    if isinstance(key, Secret):
        return key
    if not isinstance(key, str) or not key.strip():
        raise ConfigurationError("api_key must be a non-empty string")
    if not all(33 <= ord(c) < 127 for c in key):
        # Only printable ASCII can be sent in a header; anything else would fail inside
        # httpx with an error whose text holds the whole key.
        raise ConfigurationError("api_key must be printable ASCII without spaces")
    return Secret(key)


def to_timeout(value: Any) -> httpx.Timeout:
    if isinstance(value, httpx.Timeout):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0:
        return httpx.Timeout(
            float(value), connect=min(float(value), DEFAULT_TIMEOUT.connect or 5.0)
        )
    raise ConfigurationError(f"timeout must be a positive number or httpx.Timeout, got {value!r}")


def _count(name: str, minimum: int) -> Callable[[Any], int]:
    def check(value: Any) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < minimum:
            raise ConfigurationError(f"{name} must be an int >= {minimum}, got {value!r}")
        return value

    return check


def _seconds(name: str) -> Callable[[Any], float | None]:
    def check(value: Any) -> float | None:
        if value is None:
            return None
        if not isinstance(value, (int, float)) or isinstance(value, bool) or not value > 0:
            raise ConfigurationError(f"{name} must be a positive number of seconds, got {value!r}")
        return float(value)

    return check


def _flag(name: str) -> Callable[[Any], bool]:
    def check(value: Any) -> bool:
        if not isinstance(value, bool):
            raise ConfigurationError(f"{name} must be True or False, got {value!r}")
        return value

    return check


def _headers(value: Any) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise ConfigurationError("default_headers must be a mapping of str to str")
    for name, text in value.items():
        check_header(name, text, "client", error=ConfigurationError)
    return dict(value)


def _limits(value: Any) -> httpx.Limits:
    if not isinstance(value, httpx.Limits):
        raise ConfigurationError(f"limits must be an httpx.Limits, got {type(value).__name__}")
    return value


def _verify(value: Any) -> bool | ssl.SSLContext:
    if isinstance(value, (bool, ssl.SSLContext)):
        return value
    if isinstance(value, (str, os.PathLike)):
        path = os.fspath(value)
        try:
            # A CA bundle path becomes an SSL context (httpx deprecates passing the path).
            return ssl.create_default_context(cafile=path)
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror or str(exc) if isinstance(exc, OSError) else str(exc)
            raise ConfigurationError(f"verify: cannot load CA bundle {path!r}: {reason}") from None
    raise ConfigurationError(
        f"verify must be True, False, a CA bundle path or an ssl.SSLContext, got {value!r}"
    )


_BACKENDS = {False: ("Client", "urllib3"), True: ("AsyncClient", "aiohttp")}


def _backend(value: Any, is_async: bool = True) -> str:
    type_name, own = _BACKENDS[is_async]
    other_name, other = _BACKENDS[not is_async]
    if value == other:
        raise ConfigurationError(
            f"backend={other!r} is for {other_name}; {type_name} takes 'httpx' or {own!r}"
        )
    if value not in ("httpx", own):
        raise ConfigurationError(f"{type_name}: backend must be 'httpx' or {own!r}, got {value!r}")
    return str(value)


_ANY = frozenset({"client", "copy"})
_EVERYWHERE = frozenset({"client", "copy", "call"})

OPTIONS: dict[str, Option] = {
    o.name: o
    for o in (
        Option(
            "api_key",
            None,
            f"App key or dataset key, sent as Authorization: Bearer (default ${KEY_ENV}).",
            _EVERYWHERE,
            check_api_key,
            cli=True,
        ),
        Option(
            "base_url",
            DEFAULT_BASE_URL,
            f"The Service API root (default ${URL_ENV}); a bare host gets /v1.",
            _ANY,
            _normalize_base_url,
            cli=True,
        ),
        Option(
            "timeout",
            DEFAULT_TIMEOUT,
            "Seconds, or an httpx.Timeout (connect 5 s, read 120 s, write 60 s, pool 30 s).",
            _EVERYWHERE,
            to_timeout,
            cli=True,
        ),
        Option(
            "max_retries",
            DEFAULT_MAX_RETRIES,
            "Retries after the first attempt, for failures that are safe to retry.",
            _EVERYWHERE,
            _count("max_retries", 0),
            cli=True,
        ),
        Option(
            "deadline",
            None,
            "Seconds the whole call may take, retries and stream included.",
            _EVERYWHERE,
            _seconds("deadline"),
            cli=True,
        ),
        Option(
            "idle_timeout",
            None,
            "Seconds a stream may go without a real event (keep-alive pings do not count).",
            _EVERYWHERE,
            _seconds("idle_timeout"),
            cli=True,
        ),
        Option("default_headers", {}, "Headers added to every request.", _ANY, _headers),
        Option("extra_headers", {}, "Headers added to this call.", frozenset({"call"}), _headers),
        Option(
            "retry_unsafe",
            False,
            "Also retry failures after which a generating POST may have run (it may bill twice).",
            frozenset({"call"}),
            _flag("retry_unsafe"),
        ),
        Option("max_json_bytes", MAX_JSON_BYTES, "Cap on a JSON answer.", _ANY, _count("cap", 1)),
        Option(
            "max_error_bytes",
            MAX_ERROR_BYTES,
            "Error bodies are cut here (the status error is still raised).",
            _ANY,
            _count("cap", 1),
        ),
        Option(
            "max_event_bytes", MAX_EVENT_BYTES, "Cap on one stream event.", _ANY, _count("cap", 1)
        ),
        Option(
            "max_binary_bytes",
            MAX_BINARY_BYTES,
            "Cap on a binary answer read whole (stream=True has none).",
            _ANY,
            _count("cap", 1),
        ),
        Option("limits", DEFAULT_LIMITS, "Connection pool limits.", frozenset({"client"}), _limits),
        Option(
            "verify",
            True,
            "TLS verification: True, False, a CA bundle path or an ssl.SSLContext.",
            frozenset({"client"}),
            _verify,
        ),
        Option(
            "follow_redirects",
            False,
            "Follow redirects (a POST is never re-sent as a GET; the key stays on its origin).",
            frozenset({"client"}),
            _flag("follow_redirects"),
        ),
        Option(
            "extra_endpoints",
            (),
            "Your own table files (service = file name).",
            frozenset({"client"}),
        ),
        Option("hooks", None, "A Hooks registry to share.", frozenset({"client"})),
        Option(
            "http_client",
            None,
            "Your httpx client (never closed by this one).",
            frozenset({"client"}),
        ),
        Option(
            "transport", None, "An httpx transport for the SDK's own pool.", frozenset({"client"})
        ),
        Option(
            "backend",
            "httpx",
            "'httpx'; 'urllib3' for Client (extra dify-oapi2[urllib3]), 'aiohttp' for "
            "AsyncClient (extra dify-oapi2[aiohttp]).",
            frozenset({"async"}),
            _backend,
        ),
    )
}

#: Keyword arguments every generated method takes besides the request fields.
CALL_OPTIONS = frozenset(
    {"stream", "raw", "collect", *(o.name for o in OPTIONS.values() if "call" in o.where)}
)
# Options that shape the pool the SDK builds: they contradict a client the caller passes in.
_POOL = ("limits", "verify", "follow_redirects", "transport", "backend")


@dataclass(frozen=True)
class Config:
    """A client's settings, checked. ``with_options`` makes a changed copy."""

    api_key: Secret
    base_url: str
    timeout: httpx.Timeout
    max_retries: int
    default_headers: Mapping[str, str]
    deadline: float | None
    idle_timeout: float | None
    max_json_bytes: int
    max_error_bytes: int
    max_event_bytes: int
    max_binary_bytes: int

    def copy(self, given: Mapping[str, Any]) -> Config:
        changes = _checked(given, "copy", "with_options")
        if "default_headers" in changes:
            changes["default_headers"] = {**self.default_headers, **changes["default_headers"]}
        return replace(self, **changes)


_CONFIG_FIELDS = tuple(Config.__dataclass_fields__)


def _checked(given: Mapping[str, Any], scope: str, where: str) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for name, value in given.items():
        option = OPTIONS.get(name)
        if value is None and option is not None:
            continue  # None means "not given": the default (or the environment) applies
        if option is None or scope not in option.where:
            allowed = sorted(n for n, o in OPTIONS.items() if scope in o.where)
            import difflib

            close = difflib.get_close_matches(name, allowed, n=1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise ConfigurationError(f"{where}() got an unknown option {name!r}{hint}")
        values[name] = option.check(value) if option.check is not None else value
    return values


def build_config(given: Mapping[str, Any], *, is_async: bool) -> tuple[Config, dict[str, Any]]:
    """Check a constructor's options; returns the settings and the pool's options."""
    scope_given = dict(given)
    backend = scope_given.pop("backend", None)
    values = _checked(scope_given, "client", type_name := "AsyncClient" if is_async else "Client")
    if backend is not None:
        values["backend"] = _backend(backend, is_async)
    if values.get("api_key") is None:
        env = os.environ.get(KEY_ENV)
        if not env:
            raise ConfigurationError(
                f"no API key: pass api_key= or set {KEY_ENV} (an app key for app services, "
                "a dataset key for knowledge)"
            )
        values["api_key"] = check_api_key(env)
    if "base_url" not in values:
        values["base_url"] = _normalize_base_url(os.environ.get(URL_ENV) or DEFAULT_BASE_URL)
    if values.get("http_client") is not None:
        clash = [n for n in _POOL if n in given and not (n == "backend" and given[n] == "httpx")]
        if clash:
            raise ConfigurationError(
                f"{type_name}(): {', '.join(clash)} configure the SDK's own pool; "
                "they cannot apply to an http_client you pass in"
            )
    if values.get("backend", "httpx") != "httpx" and values.get("transport") is not None:
        raise ConfigurationError(
            f"{type_name}(): backend={values['backend']!r} makes its own transport"
        )
    settings = {name: values.get(name, OPTIONS[name].default) for name in _CONFIG_FIELDS}
    pool = {n: values.get(n, OPTIONS[n].default) for n in OPTIONS if n not in settings}
    return Config(**settings), pool


def call_settings(config: Config, opts: Mapping[str, Any], op: str) -> dict[str, Any]:
    """Per-call options checked (``stream``, ``raw``, ``collect`` are handled by the caller)."""
    try:
        return _checked(opts, "call", op)
    except ConfigurationError as exc:
        from ._exceptions import InvalidArgumentsError

        raise InvalidArgumentsError(str(exc)) from None
