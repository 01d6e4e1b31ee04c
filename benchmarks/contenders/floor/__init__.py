"""The floor: raw httpx with msgspec Structs written by hand for exactly these payloads."""
