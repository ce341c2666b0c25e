"""The constants of docs/DASK.md's scaling model, measured on this machine.

    python benchmarks/bench_dask.py [--tasks N] [--workers N]

- scheduler overhead per task: N tasks that do nothing but carry what a pynet run's task carries
  (the experiment spec, the setting, tryhw4.py's builders and loader pickled by value), submitted
  at once to a LocalCluster of --workers processes; overhead per task = wall x workers / N (the
  worker time each task costs beyond its run), and the round trip of one task alone;
- the data read once per worker: tryhw4.read_dataset for MNIST and CIFAR-10 in this process
  (OS file cache warm after the first read; the first figure printed is the cold one if the cache was
  cold);
- the run times themselves come from timings.json of a `tryhw4.py --all --report DIR` run.
"""
import argparse
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))


def nothing(task):
    return task["label"]


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--tasks", type=int, default=1000)
    p.add_argument("--workers", type=int, default=2)
    args = p.parse_args()
    import tryhw4
    from pynet import experiments as ex
    from pynet import sweep

    for name in ("mnist", "cifar10"):
        t0 = time.perf_counter()
        tryhw4.read_dataset(name, None)
        print("read %s: %.2f s" % (name, time.perf_counter() - t0))

    t0 = time.perf_counter()
    client = sweep.local_client(args.workers)
    print("LocalCluster of %d workers up: %.2f s" % (args.workers, time.perf_counter() - t0))
    runner = sweep.ClusterRunner(client, tryhw4.BUILDERS, tryhw4.load_dataset)
    _, tasks = runner._tasks("2.2.2")
    task = tasks[0]
    client.submit(nothing, task, pure=False).result()          # warm up: imports on the workers
    rt = []
    for _ in range(20):
        t0 = time.perf_counter()
        client.submit(nothing, task, pure=False).result()
        rt.append(time.perf_counter() - t0)
    rt.sort()
    print("one task alone, round trip: median %.1f ms" % (1000 * rt[len(rt) // 2]))
    t0 = time.perf_counter()
    futures = [client.submit(nothing, dict(task, label=str(k)), pure=False) for k in range(args.tasks)]
    client.gather(futures)
    wall = time.perf_counter() - t0
    print("%d tasks at once on %d workers: %.2f s wall, %.2f ms per task of worker time"
          % (args.tasks, args.workers, wall, 1000 * wall * args.workers / args.tasks))
    print("load average: %s" % " ".join("%.2f" % x for x in os.getloadavg()))
    cluster = client.cluster
    client.close()
    cluster.close()


if __name__ == "__main__":
    main()
