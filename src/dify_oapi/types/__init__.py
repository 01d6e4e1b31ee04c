"""Request, response and event structs of the Dify Service API (msgspec Structs).

Submodules load on first use of one of their names, so importing the SDK stays cheap and a
chat-only program never builds the knowledge-base structs.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from ._base import UNSET as UNSET
from ._base import FileInput as FileInput
from ._base import Model as Model
from ._base import Request as Request
from ._base import UnsetType as UnsetType

if TYPE_CHECKING:
    from .annotation import *  # noqa: F403
    from .app import *  # noqa: F403
    from .chat import *  # noqa: F403
    from .common import *  # noqa: F403
    from .completion import *  # noqa: F403
    from .conversation import *  # noqa: F403
    from .events import *  # noqa: F403
    from .knowledge import *  # noqa: F403
    from .workflow import *  # noqa: F403

# Searched in this order for a name not loaded yet; the cheap, widely used modules first.
_MODULES = (
    "common",
    "events",
    "app",
    "chat",
    "conversation",
    "annotation",
    "completion",
    "workflow",
    "knowledge",
)
_BASE_NAMES = ["UNSET", "FileInput", "Model", "Request", "UnsetType"]


def _load(name: str) -> Any:
    if name == "__all__":
        names = list(_BASE_NAMES)
        for submodule in _MODULES:
            names += importlib.import_module(f"{__name__}.{submodule}").__all__
        globals()["__all__"] = names
        return names
    if name in _MODULES:  # ``from dify_oapi.types import events`` asks for a submodule
        return importlib.import_module(f"{__name__}.{name}")
    if name.startswith("_"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    for module_name in _MODULES:
        module = importlib.import_module(f"{__name__}.{module_name}")
        if name in module.__all__:
            value = getattr(module, name)
            globals()[name] = value
            return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


if not TYPE_CHECKING:  # checkers see the names above; a typo must not pass as Any
    __getattr__ = _load


def __dir__() -> list[str]:
    names: list[str] = _load("__all__")
    return names
