"""An app's input form, checked as Dify checks a run's inputs before anything is created."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from ._base import invalid

#: Form item kinds whose value Dify takes only as a string.
_TEXT = frozenset({"text-input", "paragraph", "select"})


def check_inputs(form: Sequence[Mapping[str, Any]], inputs: Mapping[str, Any]) -> None:
    """400 ``invalid_param`` with Dify's wording for the first input the form refuses.

    A required input left out or empty, a text input that is not a string, or one over its
    ``max_length`` (recordings "completion missing required input", "error: workflow input
    wrong type", "error: workflow input too long").
    """
    for item in form:
        for kind, field in item.items():
            name = field.get("variable", "")
            value = inputs.get(name)
            if value is None or value == "":
                if field.get("required"):
                    raise invalid(f"{name} is required in input form")
                continue
            if kind in _TEXT and not isinstance(value, str):
                raise invalid(f"(type '{kind}') {name} in input form must be a string")
            limit = field.get("max_length")
            if kind in _TEXT and limit and len(value) > limit:
                raise invalid(f"{name} in input form must be less than {limit} characters")


def stored_inputs(form: Sequence[Mapping[str, Any]], inputs: Mapping[str, Any]) -> dict[str, Any]:
    """The inputs Dify keeps with a message: one per form variable, ``None`` when not given
    (recording "messages list": ``{"name": null}`` for ``inputs: {}``); inputs outside the
    form are kept as sent (no recording shows what Dify does with them)."""
    names = [field.get("variable", "") for item in form for field in item.values()]
    return {name: inputs.get(name) for name in names} | dict(inputs)
