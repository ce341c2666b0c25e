"""What the experiments cost on a student's code: the straightforward solution
(tests/homework_solution.py: element loops over m.data, matrix products through pynet) in the
Python training loop of ``tryhw4.py --impl``, against pynet's C loop, on experiment 2.2.1 (softmax,
MNIST, batch 128, 1,000 iterations).

Two measurements: the whole command ``tryhw4.py --impl tests/homework_solution.py -e 2.2.1`` (its
homework check, the MNIST load, the C reference run, the Python run and both accuracies), and the
two training loops alone, per step, as wall and CPU time. The load averages before and after are
printed: on a shared machine wall time includes waiting for a core, CPU time does not.

    python benchmarks/bench_homework.py [--iters N] [--threads N]
"""
import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
SOLUTION = REPO / "tests" / "homework_solution.py"


def loadavg():
    return "%.2f %.2f %.2f" % os.getloadavg()


def whole_command(iters, threads):
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    p = subprocess.run([sys.executable, str(REPO / "tryhw4.py"), "--impl", str(SOLUTION), "-e", "2.2.1",
                        "--iters", str(iters), "--threads", str(threads), "--quiet"],
                       capture_output=True, text=True, env=dict(os.environ, PYNET_PROGRESS="0"), cwd=str(REPO))
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if p.returncode:
        sys.exit("tryhw4.py failed:\n" + p.stderr)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    match = [line for line in p.stdout.splitlines() if "match the C reference" in line]
    return wall, cpu, match[0] if match else "?"


def loops(iters, threads):
    import pynet
    from pynet import datasets
    from pynet.homework.loop import Implementation
    pynet.set_threads(threads)
    impl = Implementation(str(SOLUTION), check=False)
    train = datasets.load("mnist", "train", bias=True)

    def model():
        pynet.set_seed(0)
        return pynet.make_model([pynet.make_layer(train.X.cols, train.y.cols, pynet.SOFTMAX)])

    out = {}
    for name, fn in (("C loop (pynet.train_model)", lambda m: pynet.train_model(m, train, 128, iters, .01, .9, 0,
                                                                              progress=False)),
                     ("Python loop (--impl, naive solution)", lambda m: impl.train(m, train, 128, iters, .01, .9, 0))):
        m = model()
        t0, c0 = time.perf_counter(), time.process_time()
        fn(m)
        out[name] = (1000 * (time.perf_counter() - t0) / iters, 1000 * (time.process_time() - c0) / iters)
    return out


def main():
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--iters", type=int, default=1000)
    p.add_argument("--threads", type=int, default=1, help="threads for pynet's kernels (default 1)")
    args = p.parse_args()
    print("load averages before: %s (%d CPUs)" % (loadavg(), os.cpu_count()))
    wall, cpu, match = whole_command(args.iters, args.threads)
    print("tryhw4.py --impl tests/homework_solution.py -e 2.2.1 --iters %d --threads %d: %.1f s wall, %.1f s CPU"
          % (args.iters, args.threads, wall, cpu))
    print("  " + match)
    print()
    print("| training loop, 2.2.1, %d steps | ms a step, wall | ms a step, CPU |" % args.iters)
    print("|---|---:|---:|")
    res = loops(args.iters, args.threads)
    for name, (w, c) in res.items():
        print("| %s | %.2f | %.2f |" % (name, w, c))
    (cw, cc), (pw, pc) = res.values()
    print()
    print("the Python loop costs %.1fx the C loop's CPU time a step (%.2f ms more)" % (pc / cc, pc - cc))
    print("load averages after: %s" % loadavg())


if __name__ == "__main__":
    main()
