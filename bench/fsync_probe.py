#!/usr/bin/env python3
"""What one pwrite + fdatasync costs on this disk: latency percentiles and CPU per sync.

Appends SIZE bytes and fdatasyncs, N times, into a file in DIR (default: the system temp
dir; give the data dir's file system), then prints wall-clock percentiles and the system /
user CPU per sync from os.times(). --prewritten writes and syncs the file's blocks first,
as the WAL's preallocated segments do (no block allocation per sync).

  taskset -c 1 python3 bench/fsync_probe.py [--size 600] [--count 1500] [--prewritten] [DIR]
"""
import argparse
import os
import tempfile
import time


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("dir", nargs="?", default=tempfile.gettempdir())
    ap.add_argument("--size", type=int, default=600)
    ap.add_argument("--count", type=int, default=1500)
    ap.add_argument("--prewritten", action="store_true")
    a = ap.parse_args()
    fd, path = tempfile.mkstemp(prefix="fsync-probe-", dir=a.dir)
    try:
        if a.prewritten:
            os.pwrite(fd, b"\0" * (a.count * a.size + 4096), 0)
            os.fsync(fd)
        chunk, lat, off = b"x" * a.size, [], 0
        t0 = os.times()
        for _ in range(a.count):
            os.pwrite(fd, chunk, off)
            off += a.size
            s = time.perf_counter()
            os.fdatasync(fd)
            lat.append(time.perf_counter() - s)
        t1 = os.times()
    finally:
        os.close(fd)
        os.unlink(path)
    lat.sort()
    pct = lambda q: lat[min(len(lat) - 1, int(len(lat) * q))] * 1e3  # noqa: E731
    print(f"size={a.size} prewritten={a.prewritten} n={a.count}: fdatasync p50={pct(0.5):.2f}ms "
          f"p90={pct(0.9):.2f}ms p99={pct(0.99):.2f}ms p99.9={pct(0.999):.2f}ms "
          f"max={lat[-1] * 1e3:.2f}ms; CPU per pwrite+fdatasync: "
          f"sys {(t1.system - t0.system) / a.count * 1e6:.0f}us "
          f"user {(t1.user - t0.user) / a.count * 1e6:.0f}us")


if __name__ == "__main__":
    main()
