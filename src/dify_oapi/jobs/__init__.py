"""Resumable JSONL batch jobs: an input file in, an output journal out, one line per input.

:mod:`.journal` reads the input and keeps the output; :mod:`.local` runs a job through a
client's ``iter_batch``; :mod:`.cluster` runs it across a Dask cluster under one cap per
app. ``dify-oapi batch`` is these, on the command line.
"""

from __future__ import annotations

from .local import JobReport, JsonlJob, run_file

__all__ = ["JobReport", "JsonlJob", "run_file"]
