"""Listings 6.7 and 6.8 of the book on a generated Ngram file, timed as the
book times them (loading is outside the timed region).

    python3 Scripts/ngrams_bench.py FILE [CHUNK_ROWS] [REPEATS]

Each variant runs REPEATS times (default 1); the fastest run counts.

Prints RESULT serial_s=… mapreduce_s=… keys=… (run by `benchmarks ngrams`).
"""
import asyncio
import functools
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def partition(data, chunk_size):
    for i in range(0, len(data), chunk_size):
        yield data[i:i + chunk_size]


def map_frequencies(chunk):
    counter = {}
    for line in chunk:
        word, _, count, _ = line.split('\t')
        if counter.get(word):
            counter[word] = counter[word] + int(count)
        else:
            counter[word] = int(count)
    return counter


def merge_dictionaries(first, second):
    merged = first
    for key in second:
        if key in merged:
            merged[key] = merged[key] + second[key]
        else:
            merged[key] = second[key]
    return merged


async def mapreduce(lines, chunk_size):
    loop = asyncio.get_running_loop()
    tasks = []
    with ProcessPoolExecutor() as pool:
        for chunk in partition(lines, chunk_size):
            tasks.append(loop.run_in_executor(pool, functools.partial(map_frequencies, chunk)))
        intermediate = await asyncio.gather(*tasks)
        return functools.reduce(merge_dictionaries, intermediate)


def main():
    path = sys.argv[1]
    chunk_size = int(sys.argv[2]) if len(sys.argv) > 2 else 50_000
    repeats = int(sys.argv[3]) if len(sys.argv) > 3 else 1
    with open(path, encoding='utf-8') as f:
        lines = f.readlines()
    serial = parallel = float('inf')
    for _ in range(repeats):
        start = time.monotonic()
        freqs = {}
        for line in lines:
            word, _, count, _ = line.split('\t')
            if word in freqs:
                freqs[word] = freqs[word] + int(count)
            else:
                freqs[word] = int(count)
        serial = min(serial, time.monotonic() - start)
    for _ in range(repeats):
        start = time.monotonic()
        result = asyncio.run(mapreduce(lines, chunk_size))
        parallel = min(parallel, time.monotonic() - start)
        assert result == freqs
    print(f"serial {serial:.3f} s, mapreduce {parallel:.3f} s, {len(freqs)} keys")
    print(f"RESULT serial_s={serial:.3f} mapreduce_s={parallel:.3f} keys={len(freqs)}")


if __name__ == '__main__':
    main()
