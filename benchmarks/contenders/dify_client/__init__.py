"""The published dify-client on PyPI (requests, dicts); runs in its own virtual environment."""
