"""Request, response and event structs of the Dify Service API (msgspec Structs)."""

from ._base import UNSET as UNSET
from ._base import FileInput as FileInput
from ._base import Model as Model
from ._base import Request as Request
from ._base import UnsetType as UnsetType
from .annotation import *  # noqa: F403
from .app import *  # noqa: F403
from .chat import *  # noqa: F403
from .common import *  # noqa: F403
from .completion import *  # noqa: F403
from .conversation import *  # noqa: F403
from .events import *  # noqa: F403
from .knowledge import *  # noqa: F403
from .workflow import *  # noqa: F403
