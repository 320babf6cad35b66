#!/usr/bin/env python3
"""The RSS reader benchmark in Python (stdlib only), for comparison with
`swift run -c release benchmarks rss`.

It starts the Swift benchmark in serve-only mode (`benchmarks rss --serve`),
which runs the same local stub with the same generated feeds (200 feeds x 20
entries, 50 ms latency on every feed and link), then does what the seed's
rssreader.py does, with the seed's loop shape: one task per feed,
`asyncio.wait(FIRST_COMPLETED)` until nothing is pending, parse, collect the
links, one task per link (HEAD), the same loop. aiohttp is not in the
standard library, so each request runs blocking `urllib` in a thread pool of
`--concurrency` threads (asyncio's `run_in_executor`), which is also the
concurrency bound.

Usage:
    swift build -c release --product benchmarks
    python3 Scripts/rssreader_bench.py [--benchmarks .build/release/benchmarks]
    python3 Scripts/rssreader_bench.py --base http://127.0.0.1:PORT   # a stub already serving
"""
import argparse
import asyncio
import concurrent.futures
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request
import xml.etree.ElementTree as ET


def fetch_and_parse(url, timeout):
    """GET a feed and return its entry links (runs in a worker thread)."""
    with urllib.request.urlopen(url, timeout=timeout) as response:
        body = response.read()
    root = ET.fromstring(body)
    return [item.findtext("link") for item in root.iter("item")]


def check(url, timeout):
    """HEAD a link and return its status (runs in a worker thread)."""
    request = urllib.request.Request(url, method="HEAD")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


async def run_all(loop, pool, function, args, timeout):
    """The seed's loop: wait(FIRST_COMPLETED) until nothing is pending."""
    pending = {loop.run_in_executor(pool, function, a, timeout) for a in args}
    results, errors = [], 0
    while pending:
        done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
        for task in done:
            if task.exception() is not None:
                errors += 1
            else:
                results.append(task.result())
    return results, errors


async def main_async(base, feeds, latency_ms, concurrency, timeout):
    loop = asyncio.get_running_loop()
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=concurrency)
    urls = [f"{base}/bench/feed-{i}.xml?delay_ms={latency_ms}" for i in range(feeds)]
    start = time.perf_counter()
    parsed, feed_errors = await run_all(loop, pool, fetch_and_parse, urls, timeout)
    fetched = time.perf_counter()
    links = list(dict.fromkeys(link for entries in parsed for link in entries if link))
    statuses, link_errors = await run_all(loop, pool, check, links, timeout)
    end = time.perf_counter()
    pool.shutdown()

    latency = latency_ms / 1000
    ideal_fetch = len(urls) * latency / concurrency
    ideal_check = len(links) * latency / concurrency
    ideal = ideal_fetch + ideal_check
    wall = end - start
    links_ok = sum(1 for s in statuses if 200 <= s < 400)
    print(f"Python (asyncio + urllib in {concurrency} threads): {len(urls)} feeds, {latency_ms} ms latency each")
    print(f"  fetch+parse: {len(parsed)}/{len(urls)} feeds ok in {fetched - start:.3f} s (ideal {ideal_fetch:.3f} s)")
    print(f"  link checks: {links_ok}/{len(links)} links ok in {end - fetched:.3f} s (ideal {ideal_check:.3f} s)")
    print(f"  total {wall:.3f} s, ideal {ideal:.3f} s: {wall / ideal:.2f}x the ideal")
    print(f"RESULT impl=python feeds={len(urls)} links={len(links)} concurrency={concurrency} latency_ms={latency_ms} "
          f"wall_s={wall:.3f} ideal_s={ideal:.3f} ratio={wall / ideal:.3f} fetch_s={fetched - start:.3f} "
          f"check_s={end - fetched:.3f} feeds_ok={len(parsed)} links_ok={links_ok} errors={feed_errors + link_errors}")


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--benchmarks", help="path of the Swift benchmarks executable (default: .build/release, else .build/debug)")
    parser.add_argument("--base", help="use a stub already serving the generated feeds at this URL")
    parser.add_argument("--feeds", type=int, default=200)
    parser.add_argument("--entries", type=int, default=20)
    parser.add_argument("--latency", type=int, default=50, help="milliseconds")
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--timeout", type=float, default=30)
    args = parser.parse_args()

    child = None
    base = args.base
    if base is None:
        root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
        binary = args.benchmarks or next(
            (p for p in (os.path.join(root, ".build", c, "benchmarks") for c in ("release", "debug")) if os.path.exists(p)), None)
        if binary is None:
            sys.exit("benchmarks executable not found: run `swift build -c release --product benchmarks` or pass --benchmarks")
        child = subprocess.Popen(
            [binary, "rss", "--serve", "--feeds", str(args.feeds), "--entries", str(args.entries), "--latency", str(args.latency)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        line = child.stdout.readline()
        if not line.startswith("BASE "):
            child.kill()
            sys.exit(f"unexpected output from {binary}: {line!r}")
        base = line.split()[1]
    try:
        asyncio.run(main_async(base, args.feeds, args.latency, args.concurrency, args.timeout))
    finally:
        if child is not None:
            child.stdin.close()  # the stub stops when its standard input closes
            child.wait(timeout=30)


if __name__ == "__main__":
    main()
