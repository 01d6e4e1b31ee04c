"""Placeholder: filled by the full-API work."""

__all__: list[str] = []
