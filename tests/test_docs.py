"""Reference docs are generated from the tables and kept current."""

from __future__ import annotations

from dify_oapi._services import ENDPOINTS
from tools import docgen as _docgen


def test_docs_are_current() -> None:
    for name, text in _docgen.generate().items():
        path = _docgen.DOCS_DIR / name
        assert path.is_file() and path.read_text("utf-8") == text, (
            f"docs/{name} is stale: run python -m tools.docgen"
        )


def test_every_operation_is_documented() -> None:
    pages = _docgen.generate()
    for service, endpoints in ENDPOINTS.items():
        page = pages[f"{service}.md"]
        for ep in endpoints:
            assert f"### `{ep.name}`" in page and f"`{ep.method} {ep.path}`" in page
            for alias in ep.aliases:
                assert f"`{service}.{alias}`" in page
