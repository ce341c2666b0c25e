"""benchmarks/bench.py — pynet's speed against NumPy and PyTorch, in one run (`make bench`).

What it times, all at batch 128 on MNIST-shaped data (60,000 × 785 with the homework's bias column,
10 classes: real MNIST when $PYNET_DATA has it, else synthetic data of that shape):

- one full training step — random batch with replacement, forward, cross-entropy loss,
  dL = y − p, backward, SGD with momentum and weight decay — for the nets 784-10 softmax,
  784-32-10 logistic, 784-64-32-10 relu and the wide 784-1024-1024-10 relu, in
    * pynet: train_model (the loop in C), and the same loop written in Python over pynet's calls;
    * NumPy float64: a plain implementation of the same algorithm (X[idx] gather, @, buffers
      preallocated where NumPy allows);
    * PyTorch float64 and float32 when torch is importable (never a dependency): the same algorithm
      with a hand-written backward, with autograd + torch.optim.SGD, and as nn.Sequential +
      CrossEntropyLoss + optim.SGD; the fastest of the three counts;
- accuracy_model over the 60,000 rows for the 784-32-10 net;
- matrix_mult_matrix at 128×784·784×1024 and 1024³ against NumPy's @.

Every figure is the median over repeats, warm-up excluded. The run records the CPU, thread
counts and library versions; it waits for idle CPUs before each measurement and reports the
largest share of the CPUs other processes took during one (a busy machine distorts two-thread
timings badly). `--update-doc` writes the
table into docs/PERFORMANCE.md.

usage: python benchmarks/bench.py [--quick] [--threads N] [--update-doc]
"""
import argparse
import datetime
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

# Benchmark rule (issue 14): this machine sets OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which put
# NumPy's OpenBLAS on slower kernels. The comparison runs with both unset, in this process only.
BLAS_OVERRIDES = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(k in os.environ for k in BLAS_OVERRIDES) and __name__ == "__main__":
    os.execve(sys.executable, [sys.executable] + sys.argv,
              {k: v for k, v in os.environ.items() if k not in BLAS_OVERRIDES})

import numpy as np  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
import pynet  # noqa: E402

try:
    import torch
except ImportError:   # optional
    torch = None

BATCH, RATE, MOMENTUM, DECAY = 128, 0.01, 0.9, 0.0005
NETS = [   # (name, hidden sizes, hidden activation, homework net?)
    ("784-10 softmax", [], None, True),
    ("784-32-10 logistic", [32], "LOGISTIC", True),
    ("784-64-32-10 relu", [64, 32], "RELU", True),
    ("784-1024-1024-10 relu", [1024, 1024], "RELU", False),
]


# ---- timing ----------------------------------------------------------------------------------

def cpu_jiffies():
    """(busy, total) jiffies of all CPUs from /proc/stat, or None off Linux."""
    try:
        with open("/proc/stat") as f:
            values = [int(v) for v in f.readline().split()[1:]]
    except OSError:
        return None
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def wait_for_quiet(limit=60.0):
    """Wait up to `limit` seconds for the CPUs to be at least 90 % idle over half a second: other
    work on the same two cores is measured as ours, and hurts two-thread code most (a thread that
    loses its core stalls its partner at every barrier)."""
    start = time.perf_counter()
    while time.perf_counter() - start < limit:
        a = cpu_jiffies()
        if a is None:
            return
        time.sleep(0.5)
        b = cpu_jiffies()
        if b[1] > a[1] and (b[0] - a[0]) / (b[1] - a[1]) <= 0.10:
            return


class OthersShare:
    """The share of the machine's CPU time that other processes used while the block ran."""

    def __enter__(self):
        self.j0, self.own0, self.t0 = cpu_jiffies(), time.process_time(), time.perf_counter()
        return self

    def __exit__(self, *exc):
        j1, own1 = cpu_jiffies(), time.process_time()
        if self.j0 is None or j1 is None or j1[1] <= self.j0[1]:
            self.share = float("nan")
            return
        hz = os.sysconf("SC_CLK_TCK")
        busy = (j1[0] - self.j0[0]) / hz
        total = (j1[1] - self.j0[1]) / hz
        self.share = max(0.0, busy - (own1 - self.own0)) / total


OTHERS = []   # the others' share of every timed block, for the report
QUIET_LIMIT = [120.0]   # seconds to wait for idle CPUs before a block (--quick: 2)


def median_time(fn, repeats, warmup=1, attempts=5):
    """Median wall time of fn() over `repeats` calls after `warmup` calls. Measures once the CPUs
    are quiet, and measures again (up to `attempts` times) when other processes took more than
    5 % of the CPUs meanwhile; records the share of the attempt kept."""
    for _ in range(warmup):
        fn()
    for _ in range(attempts):
        wait_for_quiet(QUIET_LIMIT[0])
        times = []
        with OthersShare() as others:
            for _ in range(repeats):
                t = time.perf_counter()
                fn()
                times.append(time.perf_counter() - t)
        if not others.share > 0.05:
            break
    OTHERS.append(others.share)
    return statistics.median(times)


def step_time(step, steps, repeats):
    """Median seconds per step of step(steps) (a function running `steps` steps)."""
    return median_time(lambda: step(steps), repeats) / steps


def flops_per_step(sizes):
    """Multiply-adds × 2 of a training step: forward in·w, backward inᵀ·delta, and delta·wᵀ for
    every layer but the first."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    fwd = sum(a * b for a, b in pairs)
    return 2 * BATCH * (2 * fwd + sum(a * b for a, b in pairs[1:]))


# ---- data ------------------------------------------------------------------------------------

def mnist_shaped_data():
    """(X, Y, description): MNIST from $PYNET_DATA when it is there, else synthetic data of its
    shape (pixels uniform in [0, 1), labels a noisy function of the pixels so training is real)."""
    base = os.environ.get("PYNET_DATA")
    if not base and (ROOT.parent / "shared" / "data").is_dir():   # the repository's convention
        base = str(ROOT.parent / "shared" / "data")
    if base and (Path(base) / "mnist" / "train-images-idx3-ubyte.gz").exists():
        from pynet.datasets import load_mnist
        d = load_mnist("train", root=Path(base) / "mnist", bias=True)
        X, Y = np.ascontiguousarray(d.X.data), np.ascontiguousarray(d.y.data)
        return X, Y, "real MNIST training set (%s/mnist)" % base
    rng = np.random.default_rng(0)
    X = rng.random((60000, 785))
    X[:, -1] = 1.0
    labels = np.argmax(X[:, :10] + 0.3 * rng.random((60000, 10)), axis=1)
    Y = np.eye(10)[labels]
    return X, Y, "synthetic data of MNIST's shape (60,000 × 785 with a bias column, 10 classes)"


# ---- pynet -----------------------------------------------------------------------------------

def pynet_model(sizes, hidden_act):
    pynet.set_seed(1)
    return pynet.make_mlp(sizes, hidden_act)


def pynet_steps(m, d):
    def run(steps):
        pynet.train_model(m, d, BATCH, steps, RATE, MOMENTUM, DECAY, progress=False)
    return run


def pynet_python_loop(m, d):
    """The homework's loop written in Python, each call going through the binding."""
    def run(steps):
        for _ in range(steps):
            b = pynet.random_batch(d, BATCH)
            p = pynet.forward_model(m, b.X)
            pynet.cross_entropy_loss(b.y, p)
            pynet.backward_model(m, b.y.data - p.data)
            pynet.update_model(m, RATE / BATCH, MOMENTUM, DECAY)
    return run


# ---- NumPy -----------------------------------------------------------------------------------

class NumpyNet:
    """The same training step in plain NumPy float64, buffers preallocated where NumPy allows."""

    def __init__(self, sizes, hidden_act, X, Y, seed=1):
        rng = np.random.default_rng(seed)
        self.X, self.Y, self.rng = X, Y, rng
        self.acts = [hidden_act] * (len(sizes) - 2) + ["SOFTMAX"]
        pairs = list(zip(sizes[:-1], sizes[1:]))
        self.W = [rng.uniform(-1, 1, (a, b)) * np.sqrt(2.0 / a) for a, b in pairs]
        self.V = [np.zeros_like(w) for w in self.W]
        self.dW = [np.empty_like(w) for w in self.W]
        self.tmp = [np.empty_like(w) for w in self.W]
        self.out = [np.empty((BATCH, b)) for _, b in pairs]
        self.delta = [np.empty((BATCH, b)) for _, b in pairs]

    def step(self):
        idx = self.rng.integers(0, self.X.shape[0], BATCH)
        x, y = self.X[idx], self.Y[idx]
        ins = []
        for W, o, act in zip(self.W, self.out, self.acts):
            ins.append(x)
            np.matmul(x, W, out=o)
            if act == "LOGISTIC":
                np.negative(o, out=o)
                np.exp(o, out=o)
                o += 1.0
                np.reciprocal(o, out=o)
            elif act == "RELU":
                np.maximum(o, 0.0, out=o)
            elif act == "SOFTMAX":
                o -= o.max(axis=1, keepdims=True)
                np.exp(o, out=o)
                o /= o.sum(axis=1, keepdims=True)
            x = o
        p = x
        loss = -np.sum(y * np.log(np.maximum(p, np.finfo(float).tiny))) / BATCH
        d = self.delta[-1]
        np.subtract(y, p, out=d)
        for i in range(len(self.W) - 1, -1, -1):
            o, act = self.out[i], self.acts[i]
            if act == "LOGISTIC":
                d *= o * (1.0 - o)
            elif act == "RELU":
                d *= o > 0
            np.matmul(ins[i].T, d, out=self.dW[i])
            if i > 0:
                np.matmul(d, self.W[i].T, out=self.delta[i - 1])
                d = self.delta[i - 1]
        for W, V, dW, t in zip(self.W, self.V, self.dW, self.tmp):
            V *= MOMENTUM                       # v = dw − λw + m·v
            V += dW
            np.multiply(W, DECAY, out=t)
            V -= t
            np.multiply(V, RATE / BATCH, out=t)  # w += η·v
            W += t
        return loss

    def steps(self, n):
        for _ in range(n):
            self.step()

    def accuracy(self):
        x = self.X
        for W, act in zip(self.W, self.acts):
            x = x @ W
            if act == "LOGISTIC":
                x = 1.0 / (1.0 + np.exp(-x))
            elif act == "RELU":
                x = np.maximum(x, 0.0)
        return np.mean(np.argmax(x, axis=1) == np.argmax(self.Y, axis=1))


# ---- PyTorch ---------------------------------------------------------------------------------

class TorchModuleNet:
    """PyTorch as most people write it: nn.Sequential of bias-free nn.Linear layers and
    activations, nn.CrossEntropyLoss, torch.optim.SGD, the batch gathered with X[idx]."""

    def __init__(self, sizes, hidden_act, X, Y, dtype, seed=1):
        torch.manual_seed(seed)
        layers = []
        for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
            layers.append(torch.nn.Linear(a, b, bias=False, dtype=dtype))
            if i < len(sizes) - 2:
                layers.append(torch.nn.Sigmoid() if hidden_act == "LOGISTIC" else torch.nn.ReLU())
        self.net = torch.nn.Sequential(*layers)
        self.X = torch.from_numpy(X).to(dtype)
        self.labels = torch.from_numpy(Y.argmax(axis=1))
        self.loss = torch.nn.CrossEntropyLoss()
        self.opt = torch.optim.SGD(self.net.parameters(), lr=RATE, momentum=MOMENTUM, weight_decay=DECAY / BATCH)

    def step(self):
        idx = torch.randint(0, self.X.shape[0], (BATCH,))
        loss = self.loss(self.net(self.X[idx]), self.labels[idx])
        self.opt.zero_grad()
        loss.backward()
        self.opt.step()
        return loss

    def steps(self, n):
        for _ in range(n):
            self.step()


class TorchNet:
    """The same step in PyTorch: `manual` writes the backward pass out (exactly the algorithm
    above); otherwise autograd computes it and torch.optim.SGD updates."""

    def __init__(self, sizes, hidden_act, X, Y, dtype, manual, seed=1):
        g = torch.Generator().manual_seed(seed)
        self.X = torch.from_numpy(X).to(dtype)
        self.Y = torch.from_numpy(Y).to(dtype)
        self.acts = [hidden_act] * (len(sizes) - 2) + ["SOFTMAX"]
        self.manual, self.g = manual, g
        pairs = list(zip(sizes[:-1], sizes[1:]))
        self.W = [((torch.rand(a, b, generator=g, dtype=dtype) * 2 - 1) * (2.0 / a) ** 0.5) for a, b in pairs]
        if manual:
            self.V = [torch.zeros_like(w) for w in self.W]
            self.dW = [torch.empty_like(w) for w in self.W]
        else:
            for w in self.W:
                w.requires_grad_(True)
            self.labels = self.Y.argmax(dim=1)
            # autograd differentiates the mean loss, so the homework's v = dw − λw + m·v, w += (η/B)·v
            # is SGD with lr η, momentum m and weight decay λ/B: the same step.
            self.opt = torch.optim.SGD(self.W, lr=RATE, momentum=MOMENTUM, weight_decay=DECAY / BATCH)

    def step(self):
        idx = torch.randint(0, self.X.shape[0], (BATCH,), generator=self.g)
        x, y = self.X.index_select(0, idx), self.Y.index_select(0, idx)
        if not self.manual:
            z = x
            for W, act in zip(self.W, self.acts):
                z = z @ W
                if act == "LOGISTIC":
                    z = torch.sigmoid(z)
                elif act == "RELU":
                    z = torch.relu(z)
            loss = torch.nn.functional.cross_entropy(z, self.labels.index_select(0, idx))   # softmax inside
            self.opt.zero_grad(set_to_none=True)
            loss.backward()
            self.opt.step()
            return loss
        with torch.no_grad():
            ins, x_ = [], x
            outs = []
            for W, act in zip(self.W, self.acts):
                ins.append(x_)
                z = x_ @ W
                if act == "LOGISTIC":
                    z = torch.sigmoid(z)
                elif act == "RELU":
                    z = torch.relu(z)
                else:
                    z = torch.softmax(z, dim=1)
                outs.append(z)
                x_ = z
            p = x_
            loss = -(y * torch.log(p.clamp_min(torch.finfo(p.dtype).tiny))).sum() / BATCH
            d = y - p
            for i in range(len(self.W) - 1, -1, -1):
                o, act = outs[i], self.acts[i]
                if act == "LOGISTIC":
                    d = d * o * (1 - o)
                elif act == "RELU":
                    d = d * (o > 0)
                torch.mm(ins[i].t(), d, out=self.dW[i])
                if i > 0:
                    d = d @ self.W[i].t()
            for W, V, dW in zip(self.W, self.V, self.dW):
                V.mul_(MOMENTUM).add_(dW).sub_(W, alpha=DECAY)
                W.add_(V, alpha=RATE / BATCH)
            return loss

    def steps(self, n):
        for _ in range(n):
            self.step()


# ---- machine ---------------------------------------------------------------------------------

def cpu_model():
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.processor() or platform.machine()
    name = re.search(r"^model name\s*:\s*(.*)$", text, re.M)
    fam = re.search(r"^cpu family\s*:\s*(\d+)", text, re.M)
    flags = re.search(r"^flags\s*:\s*(.*)$", text, re.M)
    have = [f for f in ("avx2", "fma", "avx512f") if flags and f in flags.group(1).split()]
    return "%s (family %s; %s)" % (name.group(1).strip() if name else "?", fam.group(1) if fam else "?",
                                   ", ".join(have) or "no AVX2")


def blas_info():
    try:
        cfg = np.show_config(mode="dicts")
        blas = cfg["Build Dependencies"]["blas"]
        return "%s %s" % (blas.get("name", "?"), blas.get("version", ""))
    except Exception:   # older NumPy
        return "?"


def blas_kernels():
    """The BLAS kernels NumPy really runs, as threadpoolctl reports them (what the rule asks to record)."""
    try:
        from threadpoolctl import threadpool_info
    except ImportError:
        return "threadpoolctl not installed"
    return "; ".join("%s %s %s" % (p.get("internal_api"), p.get("version"), p.get("architecture", ""))
                     for p in threadpool_info() if p.get("user_api") == "blas") or "none found"


def machine_info(threads):
    info = {
        "date": datetime.date.today().isoformat(),
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "numpy": "%s (%s, kernels %s, %s; threads: %s)" % (
            np.__version__, blas_info(), blas_kernels(),
            ", ".join("%s=%s" % (k, os.environ[k]) if k in os.environ else k + " unset" for k in BLAS_OVERRIDES),
                                           os.environ.get("OPENBLAS_NUM_THREADS") or os.environ.get("OMP_NUM_THREADS")
                                           or "all cores"),
        "pynet": "%s (simd %s, OpenMP %s, threads %d)" % (pynet.__version__, pynet.build_info()["simd"],
                                                          pynet.build_info()["openmp"], threads),
        "torch": ("%s (threads %d)" % (torch.__version__, torch.get_num_threads())) if torch else "not installed",
    }
    return info


# ---- the run ---------------------------------------------------------------------------------

def fmt_us(s):
    return "%.0f" % (s * 1e6) if s >= 1e-4 else "%.1f" % (s * 1e6)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true", help="fewer repeats (a smoke test, not for the record)")
    ap.add_argument("--threads", type=int, default=None, help="threads for pynet and torch (default: all cores)")
    ap.add_argument("--update-doc", action="store_true", help="write the results into docs/PERFORMANCE.md")
    args = ap.parse_args(argv)
    if args.threads:
        pynet.set_threads(args.threads)
        if torch:
            torch.set_num_threads(args.threads)
    threads = pynet.get_threads()
    reps = 3 if args.quick else 11
    if args.quick:
        QUIET_LIMIT[0] = 2.0
    X, Y, data_desc = mnist_shaped_data()
    d = pynet.make_data(X, Y)
    info = machine_info(threads)
    print("pynet benchmark, %s, batch %d" % (info["date"], BATCH))
    for key in ("cpu", "cores", "python", "numpy", "pynet", "torch"):
        print("  %-7s %s" % (key, info[key]))
    print("  data    %s" % data_desc)
    print()

    rows, results = [], {}
    for name, hidden, act, homework in NETS:
        sizes = [785] + hidden + [10]
        wide = not homework
        steps = 5 if wide else 200
        r = reps if not wide else max(3, reps // 2)
        flops = flops_per_step(sizes)
        res = {"flops": flops}
        m = pynet_model(sizes, act or "SOFTMAX")
        res["pynet"] = step_time(pynet_steps(m, d), steps, r)
        if not wide:
            res["pynet (Python loop)"] = step_time(pynet_python_loop(m, d), steps // 2, r)
        nn = NumpyNet(sizes, act, X, Y)
        res["numpy f64"] = step_time(nn.steps, steps if not wide else 3, r)
        if torch:
            for dtype, label in ((torch.float64, "f64"), (torch.float32, "f32")):
                variants = {"manual": TorchNet(sizes, act, X, Y, dtype, True),
                            "autograd": TorchNet(sizes, act, X, Y, dtype, False),
                            "nn.Module": TorchModuleNet(sizes, act, X, Y, dtype)}
                for kind, tn in variants.items():
                    res["torch %s %s" % (label, kind)] = step_time(tn.steps, steps if not wide else 3, r)
                res["torch " + label] = min(res["torch %s %s" % (label, kind)] for kind in variants)
        results[name] = res
        line = "%-24s pynet %8s us   numpy %8s us" % (name, fmt_us(res["pynet"]), fmt_us(res["numpy f64"]))
        if torch:
            line += "   torch f64 %8s us   torch f32 %8s us" % (fmt_us(res["torch f64"]), fmt_us(res["torch f32"]))
        print(line, flush=True)

    # accuracy_model over the whole training set, 784-32-10
    m = pynet_model([785, 32, 10], "LOGISTIC")
    acc_t = median_time(lambda: pynet.accuracy_model(m, d), reps)
    nn = NumpyNet([785, 32, 10], "LOGISTIC", X, Y)
    acc_np = median_time(nn.accuracy, reps)

    # matrix_mult_matrix against NumPy's @
    rng = np.random.default_rng(3)
    mm = {}
    for shape in ((128, 784, 1024), (1024, 1024, 1024)):
        n, k, mcols = shape
        a, b = rng.standard_normal((n, k)), rng.standard_normal((k, mcols))
        fl = 2.0 * n * k * mcols
        r = reps if n < 1024 else max(5, reps // 2)
        tp = median_time(lambda: pynet.matrix_mult_matrix(a, b), r)
        tn = median_time(lambda: a @ b, r)
        mm[shape] = (tp, tn, fl)

    table = render(results, acc_t, acc_np, mm, info, data_desc, threads)
    print()
    print(table)
    if args.update_doc:
        update_doc(table)
        print("\nwrote docs/PERFORMANCE.md")
    return 0


def verdict(ok):
    return "met" if ok else "**NOT met**"


def render(results, acc_t, acc_np, mm, info, data_desc, threads):
    have_torch = any("torch f32" in r for r in results.values())
    lines = []
    lines.append("Measured %s on %s, %s cores; pynet %s threads; NumPy %s; PyTorch %s; Python %s. "
                 "Data: %s." % (info["date"], info["cpu"], info["cores"], threads, info["numpy"], info["torch"],
                                info["python"], data_desc))
    lines.append("")
    head = "| net (batch 128) | pynet µs/step | GFLOP/s | pynet, Python loop µs | NumPy f64 µs | pynet/NumPy |"
    sep = "|---|---:|---:|---:|---:|---:|"
    if have_torch:
        head += " PyTorch f64 µs | PyTorch f32 µs | pynet/PyTorch f32 |"
        sep += "---:|---:|---:|"
    lines += [head, sep]
    targets = []
    for name, _, _, homework in NETS:
        r = results[name]
        ratio_np = r["pynet"] / r["numpy f64"]
        row = "| %s | %s | %.1f | %s | %s | %.2f |" % (
            name, fmt_us(r["pynet"]), r["flops"] / r["pynet"] / 1e9,
            fmt_us(r["pynet (Python loop)"]) if "pynet (Python loop)" in r else "–",
            fmt_us(r["numpy f64"]), ratio_np)
        if have_torch:
            ratio_t = r["pynet"] / r["torch f32"]
            row += " %s | %s | %.2f |" % (fmt_us(r["torch f64"]), fmt_us(r["torch f32"]), ratio_t)
        lines.append(row)
        if homework:
            targets.append("%s: pynet/NumPy = %.2f (target ≤ 0.50: %s)" % (name, ratio_np, verdict(ratio_np <= 0.5)))
            if have_torch:
                targets.append("%s: pynet/PyTorch f32 = %.2f (target ≤ 0.35: %s)" % (
                    name, ratio_t, verdict(ratio_t <= 0.35)))
        else:
            thr = r["numpy f64"] / r["pynet"]
            targets.append("%s: pynet throughput = %.2f × NumPy's (%.1f vs %.1f GFLOP/s; target ≥ 0.95: %s)" % (
                name, thr, r["flops"] / r["pynet"] / 1e9, r["flops"] / r["numpy f64"] / 1e9, verdict(thr >= 0.95)))
    lines.append("")
    lines.append("| operation | pynet | NumPy | pynet GFLOP/s | NumPy GFLOP/s | pynet/NumPy time |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    lines.append("| accuracy_model, 60,000 rows, 784-32-10 | %.1f ms | %.1f ms | | | %.2f |" % (
        acc_t * 1e3, acc_np * 1e3, acc_t / acc_np))
    targets.append("accuracy_model over 60,000 rows (784-32-10): %.1f ms (target ≤ 40 ms: %s)" % (
        acc_t * 1e3, verdict(acc_t <= 0.040)))
    for (n, k, mcols), (tp, tn, fl) in mm.items():
        lines.append("| matrix_mult_matrix %d×%d·%d×%d | %.2f ms | %.2f ms | %.0f | %.0f | %.2f |" % (
            n, k, k, mcols, tp * 1e3, tn * 1e3, fl / tp / 1e9, fl / tn / 1e9, tp / tn))
        if n == 1024:
            targets.append("matrix_mult_matrix 1024³: %.2f × NumPy's throughput (target ≥ 0.8: %s)" % (
                tn / tp, verdict(tn / tp >= 0.8)))
    if have_torch:
        lines.append("")
        lines.append("PyTorch columns are the fastest of three ways to write the step: a hand-written backward "
                     "(manual), autograd + optim.SGD on raw tensors (autograd), and nn.Sequential + "
                     "CrossEntropyLoss + optim.SGD (nn.Module): " +
                     "; ".join("%s %s" % (name.split()[0], ", ".join(
                         "%s %s µs" % (key[6:], fmt_us(results[name][key])) for key in sorted(results[name])
                         if key.startswith("torch ") and key.count(" ") >= 2)) for name, *_ in NETS) + ".")
    lines.append("")
    lines.append("Targets (issue 5):")
    lines += ["- " + t for t in targets]
    worst = max((x for x in OTHERS if x == x), default=float("nan"))
    lines.append("")
    lines.append("Other processes took at most %.0f%% of the CPUs during any timed block%s." % (
        100 * worst, "" if not worst > 0.05 else
        " — the figures are contaminated; two-thread code suffers most from a busy machine"))
    return "\n".join(lines)


def update_doc(table):
    path = ROOT / "docs" / "PERFORMANCE.md"
    text = path.read_text() if path.exists() else "# Performance\n\n<!-- bench:start -->\n<!-- bench:end -->\n"
    start, end = "<!-- bench:start -->", "<!-- bench:end -->"
    if start not in text or end not in text:
        text += "\n%s\n%s\n" % (start, end)
    before, rest = text.split(start, 1)
    _, after = rest.split(end, 1)
    path.write_text(before + start + "\n" + table + "\n" + end + after)


if __name__ == "__main__":
    sys.exit(main())
