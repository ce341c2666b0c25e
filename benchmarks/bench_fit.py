"""benchmarks/bench_fit.py — a practitioner's first recipe, timed end to end (issue 14, `make bench`).

Real MNIST (60,000 training digits in [0, 1], the 10,000 test digits), 784-256-10 relu with bias,
Adam at rate 1e-3, batch 128, 2 epochs, trained by:

- pynet ``fit`` (the loop in C), with float64 products and with ``matmul="float32"`` (float32
  products; weights and optimiser state float64), the latter also with ``make_mlp(init="glorot")``
  (scikit-learn's initialisation instead of the homework's);
- pynet ``MLPClassifier`` likewise, when ``from pynet import MLPClassifier`` works (skipped with a
  message if not);
- scikit-learn's ``MLPClassifier`` (float64; hidden_layer_sizes=(256,), solver="adam",
  learning_rate_init=1e-3, batch_size=128, alpha=0, max_iter=2);
- PyTorch float32 when torch is importable (never a dependency): nn.Sequential + CrossEntropyLoss +
  torch.optim.Adam over a shuffled index per epoch, the usual loop.

They run in rounds: round r runs every contender once, with seed r (5 rounds unless ``--runs``), so
that a spell of load from elsewhere falls on all of them alike. The table gives the median seconds
per epoch (the range beside it) and the mean test accuracy after the 2 epochs over the seeds (their
range beside it, and the standard error of the mean below); then pynet's MLPClassifier against
pynet's fit with the same settings, as the median over rounds of the ratio within a round. Then the
step under load: with another process spinning on one core, the seconds per training step of pynet
with every thread against one thread: pynet's default (adaptive threads: the loop runs on whichever
of one thread and all it measures faster; a short spin before sleeping), the threads pinned, and
passive waits.

Benchmark rule (issue 14): this machine sets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which put
NumPy's OpenBLAS (and so scikit-learn) on slower kernels. This script re-executes itself with both
unset (in its own process only, never in tests or CI) and prints the kernels threadpoolctl reports.

``--threads N`` runs every contender on N threads (pynet.set_threads, torch.set_num_threads and
threadpoolctl's limit for scikit-learn's BLAS): on a machine other work keeps busy, one thread each
is the fairer comparison, since every library's threads then wait on each other.

usage: python benchmarks/bench_fit.py [--runs N] [--epochs E] [--threads N] [--no-busy]
"""
import argparse
import contextlib
import functools
import json
import os
import statistics
import subprocess
import sys
import time
import warnings
from pathlib import Path

BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(k in os.environ for k in BLAS_OVERRIDES) and __name__ == "__main__":
    env = {k: v for k, v in os.environ.items() if k not in BLAS_OVERRIDES}
    os.execve(sys.executable, [sys.executable] + sys.argv, env)

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import pynet  # noqa: E402
from pynet import datasets  # noqa: E402

HIDDEN, RATE, BATCH = 256, 1e-3, 128


def load():
    tr, te = datasets.load_mnist("train"), datasets.load_mnist("test")
    return tr, te


def pynet_model(seed, init="homework"):
    pynet.set_seed(seed)
    return pynet.make_mlp([784, HIDDEN, 10], pynet.RELU, bias=True, init=init)


def run_pynet_fit(tr, te, epochs, seed, matmul="float64", init="homework"):
    m = pynet_model(seed, init)
    t = time.perf_counter()
    pynet.fit(m, tr, epochs=epochs, batch=BATCH, optimizer="adam", rate=RATE, progress=False, matmul=matmul)
    seconds = time.perf_counter() - t
    return seconds / epochs, pynet.accuracy_model(m, te)


def run_pynet_estimator(tr, te, epochs, seed, matmul="float64", init="homework"):
    from pynet import MLPClassifier
    X, y = tr.X.data, tr.y.data.argmax(1)
    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), solver="adam", learning_rate_init=RATE, batch_size=BATCH,
                        alpha=0.0, max_iter=epochs, random_state=seed, matmul=matmul, init=init)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - t
    return seconds / epochs, clf.score(te.X.data, te.y.data.argmax(1))


def run_sklearn(tr, te, epochs, seed):
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.neural_network import MLPClassifier
    X, y = tr.X.data, tr.y.data.argmax(1)
    clf = MLPClassifier(hidden_layer_sizes=(HIDDEN,), solver="adam", learning_rate_init=RATE, batch_size=BATCH,
                        alpha=0.0, max_iter=epochs, random_state=seed, n_iter_no_change=epochs + 1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        t = time.perf_counter()
        clf.fit(X, y)
        seconds = time.perf_counter() - t
    return seconds / epochs, clf.score(te.X.data, te.y.data.argmax(1))


def run_torch(tr, te, epochs, seed):
    import torch
    torch.manual_seed(seed)
    X = torch.tensor(tr.X.data, dtype=torch.float32)
    y = torch.tensor(tr.y.data.argmax(1))
    net = torch.nn.Sequential(torch.nn.Linear(784, HIDDEN), torch.nn.ReLU(), torch.nn.Linear(HIDDEN, 10))
    opt = torch.optim.Adam(net.parameters(), lr=RATE)
    loss_fn = torch.nn.CrossEntropyLoss()
    n = (len(X) // BATCH) * BATCH
    t = time.perf_counter()
    for _ in range(epochs):
        perm = torch.randperm(len(X))[:n]
        for i in range(0, n, BATCH):
            idx = perm[i:i + BATCH]
            opt.zero_grad()
            loss = loss_fn(net(X[idx]), y[idx])
            loss.backward()
            opt.step()
    seconds = time.perf_counter() - t
    with torch.no_grad():
        pred = net(torch.tensor(te.X.data, dtype=torch.float32)).argmax(1).numpy()
    return seconds / epochs, float(np.mean(pred == te.y.data.argmax(1)))


# ---- the step under load ------------------------------------------------------------------------

def busy_child(threads, steps, adapt):
    """(In a child process.) Seconds per fit step of the recipe on `threads` threads, over 3 fits of
    `steps` steps after a warm-up fit (adaptive threads on or pinned)."""
    tr, _ = load()
    pynet.set_threads(threads)
    pynet.set_adaptive_threads(bool(adapt))
    m = pynet_model(1)
    sub = pynet.make_data(tr.X.data[:steps * BATCH], tr.y.data[:steps * BATCH])
    pynet.fit(m, sub, epochs=1, batch=BATCH, optimizer="adam", rate=RATE, progress=False)   # warm-up
    times = []
    for _ in range(3):
        t = time.perf_counter()
        pynet.fit(m, sub, epochs=1, batch=BATCH, optimizer="adam", rate=RATE, progress=False)
        times.append((time.perf_counter() - t) / steps)
    return statistics.median(times)


# The variants of the step under load: (label, environment added, adaptive threads, steps per fit).
# pynet's default sets OMP_WAIT_POLICY=PASSIVE with GOMP_SPINCOUNT=10000 itself (pynet/_native.py);
# a user's OMP_WAIT_POLICY alone means no spin. Pinned two-thread steps under load are slow, so that
# variant runs fewer of them.
BUSY_VARIANTS = [
    ("pynet's default: adaptive threads, short spin", {}, True, 800),
    ("threads pinned (set_adaptive_threads(False)), short spin", {}, False, 150),
    ("adaptive threads, passive waits (OMP_WAIT_POLICY=PASSIVE)", {"OMP_WAIT_POLICY": "PASSIVE"}, True, 800),
]


def step_in_child(extra_env, threads, steps, adapt=True):
    """Seconds per step in a fresh process with `extra_env` added to the environment (without
    OMP_WAIT_POLICY / GOMP_SPINCOUNT otherwise, so pynet's own defaults apply)."""
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    env.pop("OMP_WAIT_POLICY", None)
    env.pop("GOMP_SPINCOUNT", None)
    env.update(extra_env)
    out = subprocess.run([sys.executable, __file__, "--busy-child", str(threads), str(steps), str(int(adapt))],
                         env=env, capture_output=True, text=True, check=True).stdout
    return json.loads(out.strip().splitlines()[-1])["seconds_per_step"]


def busy_table():
    rows = []
    every_core = os.cpu_count() or 1
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.5)
        for label, extra, adapt, steps in BUSY_VARIANTS:
            one = step_in_child(extra, 1, min(steps, 300), adapt)
            every = step_in_child(extra, every_core, steps, adapt)
            rows.append((label, one, every))
    finally:
        spinner.kill()
        spinner.wait()
    label, extra, adapt, steps = BUSY_VARIANTS[0]
    quiet = (step_in_child(extra, 1, steps, adapt), step_in_child(extra, every_core, steps, adapt))
    return rows, quiet


def threadpools():
    try:
        import sklearn  # noqa: F401  (so that its OpenMP runtime is listed too)
        from threadpoolctl import threadpool_info
    except ImportError:
        return ["threadpoolctl not installed"]
    return ["%s %s %s (%s, %d threads)" % (p.get("internal_api"), p.get("version"), p.get("architecture", ""),
                                           Path(p.get("filepath", "?")).name, p.get("num_threads", 0))
            for p in threadpool_info()]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--runs", type=int, default=5, help="rounds (seeds 0..N-1), every contender once each")
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--threads", type=int, default=None, help="threads for every contender (default: all cores)")
    ap.add_argument("--no-busy", action="store_true", help="skip the step under load")
    ap.add_argument("--busy-child", nargs=3, type=int, help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.busy_child:
        print(json.dumps({"seconds_per_step": busy_child(*a.busy_child)}))
        return 0
    tr, te = load()
    limit = contextlib.nullcontext
    if a.threads:
        pynet.set_threads(a.threads)
        try:
            import torch
            torch.set_num_threads(a.threads)
        except ImportError:
            pass
        from threadpoolctl import threadpool_limits
        limit = lambda: threadpool_limits(a.threads)  # noqa: E731  (applied on entry to each block)
    print("bench_fit: real MNIST, 784-%d-10 relu + bias, Adam rate %g, batch %d, %d epochs, %d rounds"
          % (HIDDEN, RATE, BATCH, a.epochs, a.runs))
    print("load averages at start: %.2f %.2f %.2f (2 cores shared with other work: figures are noisy)"
          % os.getloadavg())
    print("OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE: %s" % ", ".join(
        "%s=%s" % (k, os.environ[k]) if k in os.environ else "%s unset" % k for k in BLAS_OVERRIDES))
    print("pynet: %s; OMP_WAIT_POLICY / GOMP_SPINCOUNT: %s" % (pynet.build_info(), ", ".join(
        "%s=%s" % (k, os.environ[k]) for k in ("OMP_WAIT_POLICY", "GOMP_SPINCOUNT") if k in os.environ)
        or "unset (pynet loads its OpenMP runtime with PASSIVE and GOMP_SPINCOUNT=10000)"))
    contenders = [("pynet fit (float64)", run_pynet_fit),
                  ("pynet fit (matmul float32)", functools.partial(run_pynet_fit, matmul="float32")),
                  ("pynet fit (matmul float32, glorot init)",
                   functools.partial(run_pynet_fit, matmul="float32", init="glorot"))]
    try:
        from pynet import MLPClassifier  # noqa: F401
        contenders.append(("pynet MLPClassifier (float64)", run_pynet_estimator))
        contenders.append(("pynet MLPClassifier (matmul float32)",
                           functools.partial(run_pynet_estimator, matmul="float32")))
        contenders.append(("pynet MLPClassifier (matmul float32, glorot init)",
                           functools.partial(run_pynet_estimator, matmul="float32", init="glorot")))
    except ImportError:
        print("pynet MLPClassifier: not importable here (from pynet import MLPClassifier failed), skipped")
    contenders.append(("scikit-learn MLPClassifier (float64)", run_sklearn))
    try:
        import torch
        n = torch.get_num_threads()
        contenders.append(("PyTorch %s float32 (%d thread%s)" % (torch.__version__, n, "s" * (n != 1)),
                           run_torch))
    except ImportError:
        print("PyTorch: not installed, skipped")
    # Rounds, not blocks: round r runs every contender once with seed r, so that a spell of load from
    # elsewhere (this machine's timings drift by up to 2x within minutes) falls on all of them alike
    # rather than on whichever contender's block it hits.
    times = {name: [] for name, _ in contenders}
    accs = {name: [] for name, _ in contenders}
    for seed in range(a.runs):
        for name, fn in contenders:
            with limit():
                seconds, acc = fn(tr, te, a.epochs, seed)
            times[name].append(seconds)
            accs[name].append(acc)
        print("  round %d of %d done (seed %d)" % (seed + 1, a.runs, seed), flush=True)
    results = {}
    for name, _ in contenders:
        t = sorted(times[name])
        results[name] = (statistics.median(t), t[0], t[-1], statistics.mean(accs[name]), min(accs[name]),
                         max(accs[name]))
        print("  %-40s %.3f s/epoch (%.3f-%.3f), test acc. mean %.2f%% (%.2f-%.2f)" % (
            name, *results[name][:3], *(100 * v for v in results[name][3:])))
    print("threadpoolctl: " + "; ".join(threadpools()))
    print()
    print("| | s / epoch (median of %d; range) | test acc. after %d epochs (mean of the %d seeds; range) |"
          % (a.runs, a.epochs, a.runs))
    print("|---|---:|---:|")
    for name, (med, lo, hi, acc, acc_lo, acc_hi) in results.items():
        print("| %s | %.3f (%.3f–%.3f) | %.2f%% (%.2f–%.2f) |" % (name, med, lo, hi, 100 * acc, 100 * acc_lo,
                                                              100 * acc_hi))
    print()
    print("The estimator against fit with the same settings, round by round (its time / fit's time, in the"
          " same round):")
    for name in results:
        if name.startswith("pynet MLPClassifier"):
            twin = name.replace("pynet MLPClassifier", "pynet fit")
            if twin in times:
                ratios = sorted(e / f for e, f in zip(times[name], times[twin]))
                print("  %s: median %.2f× (rounds %s)" % (name.replace("pynet MLPClassifier ", ""),
                      statistics.median(ratios), ", ".join("%.2f" % r for r in ratios)))
    n = a.runs
    if n > 1:
        print()
        print("Mean test accuracy, with the standard error of the mean over the %d seeds:" % n)
        for name in results:
            print("  %-52s %.2f%% ± %.2f" % (name, 100 * statistics.mean(accs[name]),
                                            100 * statistics.stdev(accs[name]) / n ** 0.5))
    print()
    for mine in [name for name in results if name.startswith("pynet")]:
        ours = results[mine][0]
        for name, (med, *_rest) in results.items():
            if not name.startswith("pynet"):
                print("%s / %s: %.2f× the time, mean test accuracy %+.2f points" % (
                    mine, name, ours / med, 100 * (results[mine][3] - results[name][3])))
    if not a.no_busy:
        rows, (quiet_one, quiet_all) = busy_table()
        print()
        print("Step under load (seconds per Adam step of the recipe; another process spinning on one core):")
        print("| pynet's threads | 1 thread | %d threads | ratio |" % (os.cpu_count() or 1))
        print("|---|---:|---:|---:|")
        for label, one, every in rows:
            print("| %s | %.2f ms | %.2f ms | %.2f× |" % (label, 1e3 * one, 1e3 * every, every / one))
        print("| no spinner (other load as it comes), pynet's default | %.2f ms | %.2f ms | %.2f× |" % (
            1e3 * quiet_one, 1e3 * quiet_all, quiet_all / quiet_one))
    print("load averages at end: %.2f %.2f %.2f" % os.getloadavg())
    return 0


if __name__ == "__main__":
    sys.exit(main())
