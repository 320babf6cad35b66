"""Round trips of tiny jobs through ProcessPoolExecutor.map (default chunksize):
the Python peer of `benchmarks pool`.

    python3 Scripts/pool_bench.py [JOBS] [WORKERS]
"""
import sys
import time
from concurrent.futures import ProcessPoolExecutor


def count(count_to: int) -> int:
    counter = 0
    while counter < count_to:
        counter = counter + 1
    return counter


def main():
    jobs = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    workers = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    with ProcessPoolExecutor(max_workers=workers) as pool:
        list(pool.map(count, [1] * 10))  # start the workers before timing, as the Swift pool starts eagerly
        start = time.monotonic()
        results = list(pool.map(count, [1] * jobs))
        wall = time.monotonic() - start
    assert results == [1] * jobs
    print(f"{jobs} jobs in {wall:.3f} s")
    print(f"RESULT jobs_per_s={jobs / wall:.0f}")


if __name__ == '__main__':
    main()
