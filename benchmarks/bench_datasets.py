"""How fast pynet.datasets loads MNIST and CIFAR-10, and how much memory it needs doing so.

Every measurement runs in a fresh Python process (so nothing is warm but the OS file cache) and is
repeated; the table shows the median and the range. Memory is the process's peak resident size
minus its size just before loading, next to the size of the float64 X it returns. "user s" and
"sys s" are the median CPU times of the process and its decoding workers, Python's start-up and
imports included (about 0.25 s user); system time is mostly the kernel providing fresh memory.
Each run waits for the machine to be idle first, and the last column shows the largest share of the
CPUs that other processes took during a run: wall times with a high share are contaminated.

    python benchmarks/bench_datasets.py [--data DIR] [--repeat N] [--workdir DIR] [--keep]

The PNG measurements need the homework's PNG trees; the benchmark makes them first with
``python -m pynet.datasets export-png`` in --workdir (a temporary folder unless given; about
550 MB of small files). Results are printed as a Markdown table, for docs/DATASETS.md.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# Each snippet runs in a fresh process with pynet imported; it sets `X_bytes` and may read `W`.
PRELUDE = """
import json, os, resource, time
import numpy as np
import pynet.datasets as D
def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
base = rss()
t = time.perf_counter()
"""
EPILOGUE = """
seconds = time.perf_counter() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"seconds": seconds, "extra": peak - base, "X_bytes": X_bytes}))
"""

SNIPPETS = {
    "mnist-idx": ("MNIST, IDX files (70,000)", """
a = D.load_mnist("train", root=W["mnist"]); b = D.load_mnist("test", root=W["mnist"])
X_bytes = a.X.data.nbytes + b.X.data.nbytes
"""),
    "cifar-bin": ("CIFAR-10, binary files (60,000)", """
a = D.load_cifar10("train", root=W["cifar10"]); b = D.load_cifar10("test", root=W["cifar10"])
X_bytes = a.X.data.nbytes + b.X.data.nbytes
"""),
    "floor-mnist": ("(floor: allocate and fill MNIST's X)", """
a = np.empty((60000, 784)); a.fill(0.5); b = np.empty((10000, 784)); b.fill(0.5)
X_bytes = a.nbytes + b.nbytes
"""),
    "floor-cifar": ("(floor: allocate and fill CIFAR-10's X)", """
a = np.empty((50000, 3072)); a.fill(0.5); b = np.empty((10000, 3072)); b.fill(0.5)
X_bytes = a.nbytes + b.nbytes
"""),
}


def png_snippet(name, workers, cache):
    return """
kw = dict(cache=%r, workers=%r, progress=False)
a = D.load_image_classification_data(W["png"] + "/%s.train", W["png"] + "/%s.labels", **kw)
b = D.load_image_classification_data(W["png"] + "/%s.test", W["png"] + "/%s.labels", **kw)
X_bytes = a.X.data.nbytes + b.X.data.nbytes
""" % (cache, workers, name, name, name, name)


NAIVE = """
from PIL import Image
def naive(listfile):
    # What one would write by hand: decode each file in turn, stack, convert.
    folder = os.path.dirname(listfile)
    paths = [os.path.join(folder, l.strip()) for l in open(listfile) if l.strip()]
    return np.stack([np.asarray(Image.open(p)) for p in paths]).reshape(len(paths), -1) / 255.0
a = naive(W["png"] + "/mnist.train"); b = naive(W["png"] + "/mnist.test")
X_bytes = a.nbytes + b.nbytes
"""


def cpu_jiffies():
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:9]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def wait_for_quiet(limit):
    """Wait up to ``limit`` seconds for the machine to be at least 90 % idle over half a second:
    other work on the same cores would be measured as ours."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        b0, t0 = cpu_jiffies()
        time.sleep(0.5)
        b1, t1 = cpu_jiffies()
        if t1 > t0 and (b1 - b0) / (t1 - t0) <= 0.10:
            return
    print("(the machine is still busy; measuring anyway)", flush=True)


def run(snippet, where, env, repeat, quiet_limit=60):
    results = []
    for _ in range(repeat):
        wait_for_quiet(quiet_limit)
        code = "W = %r\n" % where + PRELUDE + snippet + EPILOGUE
        before = os.times()
        b0, t0 = cpu_jiffies()
        out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, cwd=REPO)
        b1, t1 = cpu_jiffies()
        after = os.times()
        if out.returncode:
            raise SystemExit("benchmark snippet failed:\n%s\n%s" % (code, out.stderr))
        result = json.loads(out.stdout.strip().splitlines()[-1])
        # The share of the machine that other processes used while this ran (0 = we had it alone).
        user = after.children_user - before.children_user
        ours = user + after.children_system - before.children_system
        ticks = os.sysconf("SC_CLK_TCK")
        result["others"] = max(0.0, ((b1 - b0) / ticks - ours) / max((t1 - t0) / ticks, 1e-9))
        result["user"], result["sys"] = user, ours - user   # of the process and its workers, start-up included
        results.append(result)
    return results


def row(label, results):
    secs = [r["seconds"] for r in results]
    extra = max(r["extra"] for r in results) / 1e6
    X = results[0]["X_bytes"] / 1e6
    others = max(r["others"] for r in results)
    user = statistics.median(r["user"] for r in results)
    system = statistics.median(r["sys"] for r in results)
    return "| %s | %.2f | %.2f–%.2f | %.2f | %.2f | %.0f | %.0f | %.2f | %.0f %% |" % (
        label, statistics.median(secs), min(secs), max(secs), user, system, X, extra, extra / X if X else 0,
        100 * others)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", default=os.environ.get("PYNET_DATA", str(REPO.parent / "shared" / "data")),
                        help="folder holding mnist/ and cifar10/ (default: $PYNET_DATA or ../shared/data)")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--workdir", help="where to export the PNG trees (default: a temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the exported PNG trees")
    parser.add_argument("--skip-naive", action="store_true", help="skip the hand-written Pillow loop baseline")
    args = parser.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="pynet-bench-"))
    cache = Path(tempfile.mkdtemp(prefix="pynet-bench-cache-"))
    env = dict(os.environ, PYNET_CACHE=str(cache), PYNET_PROGRESS="0",
               PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    data = Path(args.data)
    where = {"mnist": str(data / "mnist"), "cifar10": str(data / "cifar10")}
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    print("pynet.datasets benchmark: %d cores, Python %s, data from %s, %d runs each\n"
          % (cores, sys.version.split()[0], data, args.repeat))
    lines = ["| load | median s | range s | user s | sys s | X MB | peak extra MB | peak / X | others' CPU |",
             "|---|---|---|---|---|---|---|---|---|"]
    try:
        for key in ("mnist-idx", "cifar-bin", "floor-mnist", "floor-cifar"):
            label, snippet = SNIPPETS[key]
            lines.append(row(label, run(snippet, where, env, args.repeat)))
            print(lines[-1], flush=True)
        for name, title in (("mnist", "MNIST, 70,000 PNGs"), ("cifar10", "CIFAR-10, 60,000 PNGs")):
            png = work / name
            if not (png / ("%s.labels" % name)).exists():
                t = time.perf_counter()
                subprocess.run([sys.executable, "-m", "pynet.datasets", "export-png", name, str(png), "--root",
                                where[name], "--quiet"], check=True, env=env, cwd=REPO, capture_output=True)
                print("(export-png %s: %.1f s)" % (name, time.perf_counter() - t), flush=True)
            w = dict(where, png=str(png))
            lines.append(row("%s, 1 process, no cache" % title, run(png_snippet(name, 1, False), w, env, args.repeat)))
            print(lines[-1], flush=True)
            lines.append(row("%s, %d workers, no cache" % (title, cores),
                             run(png_snippet(name, None, False), w, env, args.repeat)))
            print(lines[-1], flush=True)
            run(png_snippet(name, None, True), w, env, 1)   # fills the cache
            lines.append(row("%s, again (from the cache)" % title, run(png_snippet(name, None, True), w, env,
                                                                       args.repeat)))
            print(lines[-1], flush=True)
            if name == "mnist" and not args.skip_naive:
                lines.append(row("MNIST, 70,000 PNGs, hand-written Pillow loop", run(NAIVE, w, env, args.repeat)))
                print(lines[-1], flush=True)
    finally:
        shutil.rmtree(cache, ignore_errors=True)
        if not args.workdir and not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print()
    print("\n".join(lines))


if __name__ == "__main__":
    main()
