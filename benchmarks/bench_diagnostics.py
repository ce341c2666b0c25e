"""benchmarks/bench_diagnostics.py — what diagnostics while training cost (issue 12, `make bench`).

pynet ``fit`` on real MNIST (the first 25,600 training digits: 200 steps of batch 128 an epoch; random
digits of the same shape when MNIST is not found), 784-H-10 relu with bias, SGD, for H = 32 and
H = 256, with ``diagnostics`` off and at N = 10. Off and on runs alternate (R pairs), so a change in
the machine's load hits both; the table gives the median seconds per step of each and the overhead
(on / off − 1). The second figure is the diagnostics' own work timed directly: the weight copy
before a recorded step plus the statistics after it, per record, divided by N steps of the off
run's median step — it leaves out only the extra C call a record adds (one chunk split in two).

This machine is shared with other jobs: the end-to-end overhead moves by a few percent from run to
run; the direct figure is steadier.

usage: python benchmarks/bench_diagnostics.py [--pairs R] [--every N] [--threads N]
"""
import argparse
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import pynet  # noqa: E402
from pynet import datasets  # noqa: E402
from pynet.diagnostics import Recorder  # noqa: E402

ROWS, BATCH = 25600, 128


def load():
    try:
        tr = datasets.load_mnist("train")
        return pynet.make_data(tr.X.data[:ROWS], tr.y.data[:ROWS]), "MNIST (first %d training digits)" % ROWS
    except Exception as e:   # no MNIST here: same shapes, random values
        rng = np.random.RandomState(0)
        return (pynet.make_data(rng.rand(ROWS, 784), rng.randint(0, 10, ROWS)),
                "random 784-feature data (%s)" % str(e).splitlines()[0][:60])


def model(hidden):
    pynet.set_seed(1)
    return pynet.make_mlp([784, hidden, 10], pynet.RELU, bias=True)


def seconds_per_step(d, hidden, diagnostics):
    m = model(hidden)
    h = pynet.fit(m, d, epochs=1, batch=BATCH, rate=0.01, progress=False, diagnostics=diagnostics)
    return h.seconds / len(h.losses), m


def direct_cost(m, every, records=200):
    """Seconds per record of the Recorder's own work (copy before, statistics after)."""
    rec = Recorder(m, every, BATCH)
    t0 = time.perf_counter()
    for k in range(records):
        done = k * every
        rec.before(done + every - 1, 1)
        rec.after(done + every)
    return (time.perf_counter() - t0) / records


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pairs", type=int, default=5, help="off/on run pairs per size")
    ap.add_argument("--every", type=int, default=10, help="N, the steps between records")
    ap.add_argument("--threads", type=int, default=None, help="threads for the C kernels (default: all cores)")
    a = ap.parse_args(argv)
    if a.threads:
        pynet.set_threads(a.threads)
    d, what = load()
    print("diagnostics overhead: fit on %s, batch %d, SGD, diagnostics=%d; %d threads, %d cores "
          "(a shared machine: other jobs' load moves these figures)" % (what, BATCH, a.every, pynet.get_threads(),
                                                                        os.cpu_count()))
    print("%-12s %12s %12s %10s %12s" % ("model", "off s/step", "on s/step", "overhead", "direct"))
    for hidden in (32, 256):
        seconds_per_step(d, hidden, None)   # warm-up: buffers, caches
        off, on = [], []
        for _ in range(a.pairs):
            off.append(seconds_per_step(d, hidden, None)[0])
            t, m = seconds_per_step(d, hidden, a.every)
            on.append(t)
        step_off, step_on = statistics.median(off), statistics.median(on)
        direct = direct_cost(m, a.every) / (a.every * step_off)
        print("%-12s %12.3e %12.3e %9.1f%% %11.2f%%" % ("784-%d-10" % hidden, step_off, step_on,
                                                        100 * (step_on / step_off - 1), 100 * direct))
    print("overhead: median on / median off - 1 over %d alternating pairs of 200 steps; direct: the copy and "
          "statistics per record over %d steps of the off median" % (a.pairs, a.every))


if __name__ == "__main__":
    main()
