#!/usr/bin/env python3
"""Listing 7.16/7.17's Python side for `benchmarks scrypt`.

usage: scrypt_bench.py HASHES THREADS

Hashes HASHES random 10-letter passwords with hashlib.scrypt (n=2048, r=8,
p=1, 16-byte salts generated up front, 64-byte keys) serially, then on a
ThreadPoolExecutor of THREADS threads through asyncio's run_in_executor and
gather (listing 7.17, with the gather inside the executor's with-block).
hashlib releases the GIL inside scrypt, so the threads compute in parallel.
Prints a RESULT line with both wall times and the process CPU time of each.
"""
import asyncio
import hashlib
import os
import random
import string
import sys
import time
from concurrent.futures import ThreadPoolExecutor


def hash_one(item):
    password, salt = item
    return hashlib.scrypt(password, salt=salt, n=2048, r=8, p=1, dklen=64)


async def threaded(items, threads):
    loop = asyncio.get_running_loop()
    with ThreadPoolExecutor(max_workers=threads) as pool:
        return await asyncio.gather(*(loop.run_in_executor(pool, hash_one, i) for i in items))


def main():
    hashes, threads = int(sys.argv[1]), int(sys.argv[2])
    rng = random.Random(716)
    items = [(''.join(rng.choice(string.ascii_lowercase) for _ in range(10)).encode(), os.urandom(16))
             for _ in range(hashes)]
    cpu0, t0 = time.process_time(), time.perf_counter()
    serial = [hash_one(i) for i in items]
    serial_s, serial_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    cpu0, t0 = time.process_time(), time.perf_counter()
    parallel = asyncio.run(threaded(items, threads))
    threaded_s, threaded_cpu = time.perf_counter() - t0, time.process_time() - cpu0
    assert parallel == serial, "threaded keys differ"
    print(f"RESULT serial_s={serial_s:.3f} serial_cpu_s={serial_cpu:.3f} "
          f"threaded_s={threaded_s:.3f} threaded_cpu_s={threaded_cpu:.3f}")


if __name__ == "__main__":
    main()
