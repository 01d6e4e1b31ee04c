"""This SDK with its default connection limits (W5 only)."""
