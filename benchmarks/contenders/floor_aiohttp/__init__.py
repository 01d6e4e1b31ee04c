"""The floor (raw httpx + msgspec) on the httpx-aiohttp transport: what httpx costs on aiohttp."""
