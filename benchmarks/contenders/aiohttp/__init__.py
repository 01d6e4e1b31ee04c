"""Raw aiohttp with the floor's msgspec Structs: the limit for W5 async."""
