"""The CPU one request costs in httpx's client layer alone: ``python benchmarks/httpx_layer.py``.

Every request of this SDK goes through ``httpx.AsyncClient`` (building the request, merging
headers, the auth and redirect steps, the response model), whatever transport carries it.
Here the transport does nothing (a ready answer of the W7 blocking chat's size), so what is
measured is that layer and nothing else: added to raw aiohttp's CPU per request (W7-concurrent),
it bounds the requests per second any client on httpx can reach on an aiohttp transport.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

import httpx

ANSWER = b"x" * 3400


class Ready(httpx.AsyncBaseTransport):
    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"3400")]
        return httpx.Response(200, headers=headers, content=ANSWER)


async def measure(calls: int, in_flight: int, rounds: int) -> float:
    """Best CPU seconds per request over ``rounds``."""
    body = json.dumps({"query": "q", "user": "u", "inputs": {}, "response_mode": "blocking"})
    headers = {"Authorization": "Bearer app-benchmark", "Content-Type": "application/json"}
    async with httpx.AsyncClient(transport=Ready(), base_url="http://127.0.0.1/v1") as client:

        async def one() -> bytes:
            answer = await client.post("/chat-messages", content=body.encode(), headers=headers)
            return answer.content

        async def batch(n: int) -> None:
            gate = asyncio.Semaphore(in_flight)

            async def held() -> None:
                async with gate:
                    await one()

            await asyncio.gather(*(held() for _ in range(n)))

        await batch(min(calls, 500))
        best = float("inf")
        for _ in range(rounds):
            started = time.process_time()
            await batch(calls)
            best = min(best, (time.process_time() - started) / calls)
        return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=5000)
    parser.add_argument("--in-flight", type=int, default=256)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument(
        "--raw-aiohttp-us", type=float, help="raw aiohttp's CPU µs per request, to print the bound"
    )
    args = parser.parse_args()
    per = asyncio.run(measure(args.calls, args.in_flight, args.rounds)) * 1e6
    print(f"httpx client layer alone: {per:.1f} µs CPU per request, {args.in_flight} in flight")
    if args.raw_aiohttp_us:
        bound = args.raw_aiohttp_us / (args.raw_aiohttp_us + per)
        print(f"so a client on httpx reaches at most {bound:.2f}x raw aiohttp's requests/s")


if __name__ == "__main__":
    main()
