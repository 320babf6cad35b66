#!/usr/bin/env python3
"""N concurrent aiohttp GETs with asyncio.gather: the book's listing 4.6.

The Python side of `swift run -c release benchmarks http`. Point both at the
same server, e.g. a stub started by `swift run -c release benchmarks http --serve`:

    python3 Scripts/aiohttp_bench.py http://127.0.0.1:PORT/ --count 1000

aiohttp's default connector (limit=100) and default timeout, as in the book.
Prints one line `RESULT benchmark=aiohttp requests=N seconds=S requests_per_second=R ok=K cpu_us_per_request=C`
for the best of --rounds rounds (the first also warms the pool); C is this process's CPU time.
"""
import argparse
import asyncio
import time

import aiohttp


async def fetch_status(session: aiohttp.ClientSession, url: str) -> int:
    async with session.get(url) as result:
        await result.read()
        return result.status


async def main(url: str, count: int, rounds: int) -> None:
    best = None
    best_cpu = None
    ok = 0
    async with aiohttp.ClientSession() as session:
        for r in range(1, rounds + 1):
            start, cpu = time.perf_counter(), time.process_time()
            statuses = await asyncio.gather(*[fetch_status(session, url) for _ in range(count)])
            elapsed, cpu = time.perf_counter() - start, time.process_time() - cpu
            ok = sum(1 for s in statuses if s == 200)
            print(f"round {r}: {count} GETs in {elapsed:.3f} s ({count / elapsed:.1f} req/s), {ok} x 200")
            if best is None or elapsed < best:
                best, best_cpu = elapsed, cpu
    print(f"RESULT benchmark=aiohttp requests={count} seconds={best:.3f} "
          f"requests_per_second={count / best:.1f} ok={ok} cpu_us_per_request={best_cpu * 1e6 / count:.1f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("url")
    parser.add_argument("--count", type=int, default=1000)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    asyncio.run(main(args.url, args.count, args.rounds))
