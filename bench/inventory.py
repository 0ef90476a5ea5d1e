#!/usr/bin/env python3
"""Inventory benchmark: `shmkit ls` against `lsipc -m` and `ls /dev/shm`, in one run.

Creates N System V and M POSIX segments, then times, alternating the tools run by run so
that machine noise hits them alike:
  - System V:  `shmkit ls --kind sysv-shm`   vs `lsipc -m`
  - POSIX:     `shmkit ls --kind posix-shm`  vs `ls -l /dev/shm`
  - holders:   `shmkit ls --kind sysv-shm --holders` with P extra processes, for several P,
               to show that the scan grows linearly with the number of processes.
Reports medians with 10th/90th percentiles and the ratios of the medians. Everything it
creates is removed at the end, also on Ctrl-C.

Usage: python3 bench/inventory.py [--sysv 4000] [--posix 10000] [--runs 21] [--procs 0,250,500,1000]
Build first: cargo build --release
"""

import argparse
import ctypes
import os
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHMKIT = os.path.join(ROOT, "target", "release", "shmkit")
libc = ctypes.CDLL(None, use_errno=True)
IPC_PRIVATE, IPC_CREAT, IPC_EXCL, IPC_RMID = 0, 0o1000, 0o2000, 0


def progress(label, i, n):
    if sys.stderr.isatty() or i == n:
        width = 30
        done = width * i // n
        sys.stderr.write(f"\r{label:<28} [{'#' * done}{'.' * (width - done)}] {i}/{n}")
        if i == n:
            sys.stderr.write("\n")
        sys.stderr.flush()


def timed(cmd, runs_out, env=None):
    t0 = time.perf_counter()
    subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, env=env)
    runs_out.append(time.perf_counter() - t0)


def summary(xs):
    xs = sorted(xs)
    q = lambda p: xs[min(len(xs) - 1, int(p * (len(xs) - 1) + 0.5))]
    return statistics.median(xs), q(0.1), q(0.9)


def fmt(xs):
    m, lo, hi = summary(xs)
    return f"{m * 1000:8.1f} ms  (p10 {lo * 1000:.1f}, p90 {hi * 1000:.1f})"


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sysv", type=int, default=4000)
    ap.add_argument("--posix", type=int, default=10000)
    ap.add_argument("--runs", type=int, default=21)
    ap.add_argument("--procs", default="0,250,500,1000")
    a = ap.parse_args()
    if not os.path.exists(SHMKIT):
        sys.exit(f"{SHMKIT} is missing: run `cargo build --release` first")
    shmmni = int(open("/proc/sys/kernel/shmmni").read())
    existing = sum(1 for _ in open("/proc/sysvipc/shm")) - 1
    if existing + a.sysv > shmmni:
        sys.exit(f"{a.sysv} segments would exceed kernel.shmmni {shmmni} ({existing} exist)")

    ids, names, sleepers = [], [], []
    tag = f"shmkit-bench-{os.getpid()}"
    try:
        for i in range(a.sysv):
            sid = libc.shmget(IPC_PRIVATE, 4096, IPC_CREAT | IPC_EXCL | 0o600)
            if sid < 0:
                sys.exit(f"shmget: errno {ctypes.get_errno()}")
            ids.append(sid)
            if i % 200 == 0 or i + 1 == a.sysv:
                progress("creating System V segments", i + 1, a.sysv)
        for i in range(a.posix):
            name = f"/dev/shm/{tag}-{i}"
            fd = os.open(name, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
            os.ftruncate(fd, 4096)
            os.close(fd)
            names.append(name)
            if i % 500 == 0 or i + 1 == a.posix:
                progress("creating POSIX segments", i + 1, a.posix)

        env = dict(os.environ, LC_ALL="C")
        pairs = {
            "sysv": (["lsipc", "-m"], [SHMKIT, "ls", "--kind", "sysv-shm"]),
            "posix": (["ls", "-l", "/dev/shm"], [SHMKIT, "ls", "--kind", "posix-shm"]),
        }
        results = {}
        for key, (base, ours) in pairs.items():
            b, o = [], []
            timed(base, [], env), timed(ours, [], env)  # warm the caches
            for r in range(a.runs):
                # Alternate the order so that neither always runs second.
                if r % 2:
                    timed(base, b, env), timed(ours, o, env)
                else:
                    timed(ours, o, env), timed(base, b, env)
                progress(f"timing {key}", r + 1, a.runs)
            results[key] = (b, o)

        scans = []
        procs = [int(p) for p in a.procs.split(",")]
        for p in procs:
            while len(sleepers) < p:
                sleepers.append(subprocess.Popen(["sleep", "600"]))
            nprocs = sum(1 for d in os.listdir("/proc") if d.isdigit())
            runs = []
            for r in range(a.runs):
                timed([SHMKIT, "ls", "--kind", "sysv-shm", "--holders"], runs, env)
            progress(f"holder scan, {p} extra procs", procs.index(p) + 1, len(procs))
            scans.append((nprocs, runs))

        print(f"\nInventory benchmark: {a.sysv} System V + {a.posix} POSIX segments, {a.runs} runs each, medians")
        b, o = results["sysv"]
        print(f"  lsipc -m                          {fmt(b)}")
        print(f"  shmkit ls --kind sysv-shm         {fmt(o)}")
        print(f"  ratio shmkit/lsipc (System V)     {summary(o)[0] / summary(b)[0]:.2f}x   (target <= 1.0x)")
        b, o = results["posix"]
        print(f"  ls -l /dev/shm                    {fmt(b)}")
        print(f"  shmkit ls --kind posix-shm        {fmt(o)}")
        print(f"  ratio shmkit/ls -l (POSIX)        {summary(o)[0] / summary(b)[0]:.2f}x")
        print("  holder scan (shmkit ls --kind sysv-shm --holders):")
        base_n, base_t = scans[0][0], summary(scans[0][1])[0]
        for n, runs in scans:
            m = summary(runs)[0]
            per = (m - base_t) / (n - base_n) * 1e6 if n != base_n else float("nan")
            print(f"    {n:6d} processes  {fmt(runs)}   {per:6.1f} us per extra process")
    finally:
        for s in sleepers:
            s.kill()
            s.wait()
        for sid in ids:
            libc.shmctl(sid, IPC_RMID, None)
        for n in names:
            try:
                os.unlink(n)
            except FileNotFoundError:
                pass


if __name__ == "__main__":
    main()
