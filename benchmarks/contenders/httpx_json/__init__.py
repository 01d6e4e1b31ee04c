"""Raw httpx with json.loads (dicts): what a hand-written client without msgspec does."""
