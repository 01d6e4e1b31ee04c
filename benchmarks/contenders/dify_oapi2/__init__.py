"""The published dify-oapi2 on PyPI (pydantic, builders); runs in its own virtual environment."""
