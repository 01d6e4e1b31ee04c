"""Settings fail as settings (issue 12, item 9): a CA bundle path that does not exist is a
``ConfigurationError`` naming the path, before any socket is opened, for every client kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from dify_oapi import AsyncClient, Client, ConfigurationError

from ..faults.conftest import client_options
from ..faults.kit import KINDS
from ..faults.server import FaultServer


@pytest.mark.parametrize("kind", KINDS)
def test_a_missing_ca_bundle_is_a_configuration_error_naming_the_path(
    server: FaultServer, tmp_path: Path, kind: str
) -> None:
    missing = str(tmp_path / "missing.pem")
    options = client_options(server, verify=missing)
    if kind == "aiohttp":
        options["backend"] = "aiohttp"
    with pytest.raises(ConfigurationError) as error:
        (Client if kind == "sync" else AsyncClient)(**options)
    assert missing in str(error.value) and "verify" in str(error.value)
    assert not isinstance(error.value, FileNotFoundError)
    assert server.accepted == 0
