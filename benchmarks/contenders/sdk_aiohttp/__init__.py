"""This SDK on the aiohttp-backed httpx transport of the httpx-aiohttp package (W5 only)."""
