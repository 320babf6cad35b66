#!/usr/bin/env python3
"""Listing 7.13's StressTest with aiohttp: the Python side of `benchmarks load`.

usage: load_bench.py URL REQUESTS

REQUESTS GETs of URL through one aiohttp ClientSession (default connector:
at most 100 connections), gathered inside the session block (the seed's
gather sits outside it, where every request fails at once), a completed
counter without a lock and a progress callback every 1 % — as in the book.
Prints `RESULT requests=N seconds=S requests_per_second=R ok=K cpu_s=C`.
"""
import asyncio
import sys
import time

import aiohttp


class StressTest:
    def __init__(self, url, total, callback):
        self.url, self.total, self.callback = url, total, callback
        self.completed = 0
        self.ok = 0
        self.refresh = max(1, total // 100)

    async def fetch(self, session):
        try:
            async with session.get(self.url) as response:
                await response.read()
                self.ok += response.status == 200
        except Exception as e:  # the book prints failures and still counts them
            print(e, file=sys.stderr)
        self.completed += 1
        if self.completed % self.refresh == 0 or self.completed == self.total:
            self.callback(self.completed, self.total)

    async def run(self):
        async with aiohttp.ClientSession() as session:
            await asyncio.gather(*(self.fetch(session) for _ in range(self.total)))


def main():
    url, total = sys.argv[1], int(sys.argv[2])
    reports = []
    test = StressTest(url, total, lambda done, n: reports.append(done))
    cpu0, t0 = time.process_time(), time.perf_counter()
    asyncio.run(test.run())
    seconds, cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert reports and reports[-1] == total, "progress did not reach the total"
    print(f"RESULT requests={total} seconds={seconds:.3f} requests_per_second={total / seconds:.0f} ok={test.ok} cpu_s={cpu:.3f}")


if __name__ == "__main__":
    main()
