"""The fault, load and bad-input battery (issue 4): run alone with ``pytest -m faults``."""
