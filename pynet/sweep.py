"""pynet.sweep — the homework's experiments on a Dask cluster (``tryhw4.py --workers N`` / ``--scheduler``).

pynet does not schedule anything itself: each run of an experiment (one setting of its sweep) is one
Dask task, and ``ClusterRunner.run_all`` submits the runs of every experiment whose dependencies
have finished (2.3.2 waits for 2.3.1's best activation, as in the serial ``Runner``), so independent
experiments share the cluster. A task carries its whole run (the experiment's spec, the setting, the
seed, the model builders and the dataset loader), so workers need pynet installed but not tryhw4.py
or the client's ``EXPERIMENTS``.

Datasets are loaded on the worker, from the path the loader finds there, once per worker process
and kept for its later runs (the loader goes through ``cached_data``), never sent with a task. Every run starts from
``set_seed(seed)`` and pynet's numbers do not depend on the thread count, so results are the
serial ones bit for bit. A worker that dies is replaced by its nanny and Dask reruns its task; a run
that raises is reported (``failed_runs``) and the other runs go on.

Dask is optional: ``import_distributed`` says how to get it.
"""
import os
import time

from . import experiments as ex

DASK_HINT = ("Dask's distributed scheduler is not installed; get it with: pip install 'dask[distributed]' "
             "(in a pynet checkout: pip install -e '.[dask]')")


def import_distributed():
    """The ``distributed`` module, or ImportError saying how to install it."""
    try:
        import distributed
    except ImportError:
        raise ImportError(DASK_HINT) from None
    return distributed


def available_cores():
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:   # not Linux
        return os.cpu_count() or 1


def local_client(workers):
    """A Client on a new LocalCluster of ``workers`` processes on loopback, one task at a time each
    (pynet's kernels bring their own threads), its dashboard on a free port."""
    distributed = import_distributed()
    if workers < 1:
        raise ValueError("workers must be >= 1, got %d" % workers)
    import logging
    # silence_logs: a run that raises is reported once, by ClusterRunner, not also as the worker's
    # multi-line "Compute Failed" log with the whole task in it
    cluster = distributed.LocalCluster(n_workers=workers, threads_per_worker=1, processes=True,
                                       host="127.0.0.1", dashboard_address=":0", silence_logs=logging.CRITICAL)
    return distributed.Client(cluster)


def remote_client(address):
    """A Client on the running scheduler at ``address`` (``dask scheduler`` + ``dask worker``)."""
    distributed = import_distributed()
    try:
        return distributed.Client(address, timeout="10s")
    except (OSError, TimeoutError) as e:
        raise OSError("cannot reach the Dask scheduler at %s: %s" % (address, e)) from None


def task_slots(client):
    """host -> how many Dask tasks can run there at once (the workers' threads on that host)."""
    slots = {}
    for info in client.scheduler_info(n_workers=-1)["workers"].values():
        slots[info["host"]] = slots.get(info["host"], 0) + info["nthreads"]
    return slots


# ---- on the worker ---------------------------------------------------------------------------------------

_data = {}            # (name, data_dir) -> what read(name, data_dir) returned, per process
loads = []            # the keys this process has read, in order (tests check it holds no repeats)


def cached_data(read, name, data_dir):
    """read(name, data_dir), called once per process per (name, data_dir) and kept: a worker reads
    each dataset once, from the path it finds there, and reuses it for all its runs."""
    key = (name, data_dir)
    if key not in _data:
        _data[key] = read(name, data_dir)
        loads.append(key)
    return _data[key]


def worker_loads():
    """What this process has read (for ``client.run(worker_loads)``)."""
    return list(loads)


def _threads(requested, slots):
    """--threads if given, else this host's cores shared among the tasks that run on it at once."""
    if requested:
        return requested
    try:
        from distributed import get_worker
        worker = get_worker()
        here = slots.get(worker.address.split("://")[-1].rsplit(":", 1)[0], worker.state.nthreads)
    except (ImportError, ValueError):
        here = 1
    return max(1, available_cores() // max(1, here))


def run_one(task):
    """One run of one experiment, on a worker: (run dict, seconds, weights, data info)."""
    from ._native import set_threads
    threads = _threads(task["threads"], task["slots"])
    set_threads(threads)
    train, test, source = task["load"](task["dataset"], task["data_dir"], task["limit"])
    runner = ex.Runner(task["builders"], None, seed=task["seed"], progress=False)
    t0 = time.perf_counter()
    run, model = runner._train(task["spec"], task["setting"], train, test)
    seconds = time.perf_counter() - t0
    run["label"] = task["label"]
    run["value"] = list(task["value"]) if isinstance(task["value"], tuple) else task["value"]
    weights = [(l.w.data.copy(), None if l.b is None else l.b.data.copy()) for l in model.layers]
    info = {"source": source, "train_rows": train.X.rows, "test_rows": test.X.rows, "classes": train.y.cols,
            "labels": train.labels}
    return {"run": run, "seconds": seconds, "weights": weights, "data": info, "threads": threads, "pid": os.getpid()}


def _ship_by_value(functions):
    """Pickle the script's functions (tryhw4.py's builders and loader) by value, so workers on other
    machines need pynet but not the script. Functions of ``__main__`` go by value already."""
    import sys
    import cloudpickle
    for f in functions:
        name = getattr(f, "__module__", None)
        if name and name != "__main__" and name.split(".")[0] != "pynet" and name in sys.modules:
            cloudpickle.register_pickle_by_value(sys.modules[name])


# ---- on the client ---------------------------------------------------------------------------------------

class ClusterRunner(ex.Runner):
    """``Runner`` whose runs go to a Dask cluster. ``load(name, data_dir, limit)`` returns (train, test,
    source) and runs on the workers (it should read through ``cached_data``); ``builders`` are tryhw4.py's model builders. After ``run_all``:
    ``results``, ``timings`` and ``models`` as the serial Runner leaves them (in the order of the ids),
    ``skipped`` (experiment -> reason), ``failed_runs`` (one dict per run that raised) and ``data_info``
    (dataset -> source and sizes, as the workers found them)."""

    def __init__(self, client, builders, load, data_dir=None, limit=None, seed=0, iters=None, threads=None,
                 log=None, warn=None, on_run=None):
        super().__init__(builders, None, seed=seed, iters=iters, progress=False, log=log, on_run=on_run)
        self.client = client
        self.load_fn = load
        self.data_dir = data_dir
        self.limit = limit
        self.threads = threads
        self.warn = warn or (lambda msg: None)
        self.skipped = {}
        self.failed_runs = []
        self.data_info = {}
        self.workers_used = set()        # worker process ids that returned a run
        self.threads_used = []           # threads each run had
        self._slots = {}                 # host -> tasks at once there; read from the scheduler by run_all
        _ship_by_value([load, *builders.values()])

    def _tasks(self, exp_id):
        spec = ex.EXPERIMENTS[exp_id]
        base = self.settings(exp_id)
        tasks = []
        for value in spec.get("values", [None]):
            setting = dict(base)
            if spec["sweep"] == "grid":
                setting["rate"], setting["decay"] = value
            elif spec["sweep"] is not None:
                setting[spec["sweep"]] = value
            tasks.append({"spec": dict(spec), "setting": setting, "value": value, "seed": self.seed,
                          "label": ex.label(spec["sweep"], value) if spec["sweep"] else "homework defaults",
                          "builders": self.builders, "load": self.load_fn, "dataset": spec["dataset"],
                          "data_dir": self.data_dir, "limit": self.limit, "threads": self.threads,
                          "slots": self._slots})
        return base, tasks

    def run_all(self, ids):
        """Run experiments ``ids`` (dependencies first, as ``experiments.resolve`` orders them) on the cluster;
        returns the ids that did not complete (skipped, or every run failed)."""
        distributed = import_distributed()
        self._slots = task_slots(self.client)
        specs = ex.EXPERIMENTS
        waiting = list(ids)
        total = sum(len(specs[i].get("values", [None])) for i in ids)
        done_runs = 0
        pending = {}                # experiment -> {"base", "out": [None]*n, "left": n, "futures": [...]}
        owner = {}                  # future -> (experiment, index)
        finished, failed = set(), []
        queue = distributed.as_completed()

        def skip(exp_id, reason):
            failed.append(exp_id)
            self.skipped[exp_id] = reason
            self.warn("%s skipped: %s" % (exp_id, reason))

        def submit_ready():
            nonlocal total
            for exp_id in list(waiting):
                needs = specs[exp_id].get("needs", [])
                reason = ex.skip_reason(exp_id, failed)
                if reason:
                    waiting.remove(exp_id)
                    total -= len(specs[exp_id].get("values", [None]))
                    skip(exp_id, reason)
                elif all(d in finished for d in needs):
                    waiting.remove(exp_id)
                    base, tasks = self._tasks(exp_id)
                    futures = [self.client.submit(run_one, t, key="pynet-run-%s-%d-%s" % (exp_id, k, os.urandom(4).hex()),
                                                  pure=False, retries=0) for k, t in enumerate(tasks)]
                    pending[exp_id] = {"base": base, "tasks": tasks, "out": [None] * len(tasks), "left": len(tasks),
                                       "futures": futures}
                    for k, f in enumerate(futures):
                        owner[f] = (exp_id, k)
                        queue.add(f)

        submit_ready()
        for future in queue:
            exp_id, k = owner.pop(future)
            state = pending.get(exp_id)
            if state is None:       # its experiment was given up (missing data): a late or cancelled run
                continue
            task = state["tasks"][k]
            try:
                out = future.result()
            except ex.MissingData as e:
                for f in state["futures"]:
                    f.cancel()
                total -= state["left"]
                del pending[exp_id]
                skip(exp_id, str(e).splitlines()[0])
                submit_ready()
                continue
            except Exception as e:   # the run raised (or its workers kept dying): report it, go on
                out = {"error": "%s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")}
                self.failed_runs.append({"experiment": exp_id, "label": task["label"], "error": out["error"]})
                self.warn("%s %s failed: %s" % (exp_id, task["label"], out["error"]))
            state["out"][k] = out
            state["left"] -= 1
            done_runs += 1
            if "error" not in out:
                run = out["run"]
                self.data_info.setdefault(specs[exp_id]["dataset"], out["data"])
                self.workers_used.add(out["pid"])
                self.threads_used.append(out["threads"])
                self.log("[%d/%d] %s %s: %s  final loss %s  train %.2f%%  test %.2f%%  (%.1fs, %d thread%s)" % (
                    done_runs, total, exp_id, specs[exp_id]["title"], run["label"],
                    "diverged at iteration %d" % run["diverged_at"] if run["diverged"] else "%.4f" % run["final_loss"],
                    100 * run["train_accuracy"], 100 * run["test_accuracy"], out["seconds"], out["threads"],
                    "" if out["threads"] == 1 else "s"))
            else:
                self.log("[%d/%d] %s %s: %s  FAILED: %s" % (done_runs, total, exp_id, specs[exp_id]["title"],
                                                           task["label"], out["error"]))
            if state["left"] == 0:
                del pending[exp_id]
                if self._finish(exp_id, state):
                    finished.add(exp_id)
                else:
                    failed.append(exp_id)
                    self.warn("%s did not complete: every run failed" % exp_id)
                submit_ready()
            if self.on_run and "error" not in out:
                self.on_run(exp_id, out["run"], out["seconds"])
        for exp_id in waiting:   # nothing left to run them after (cannot happen with resolve()'s order)
            skip(exp_id, "its dependencies did not finish")
        order = {i: n for n, i in enumerate(ids)}
        self.results = dict(sorted(self.results.items(), key=lambda kv: order[kv[0]]))
        self.timings = dict(sorted(self.timings.items(), key=lambda kv: order[kv[0]]))
        first = {}               # datasets in the order the serial Runner would have loaded them
        for exp_id in ids:
            first.setdefault(specs[exp_id]["dataset"], len(first))
        self.data_info = dict(sorted(self.data_info.items(), key=lambda kv: first[kv[0]]))
        return failed

    def _finish(self, exp_id, state):
        """The experiment's result, as the serial Runner builds it, from its runs that did not fail."""
        spec = ex.EXPERIMENTS[exp_id]
        ok = [o for o in state["out"] if "error" not in o]
        if not ok:
            return False
        result = {"id": exp_id, "title": spec["title"], "question": spec["question"], "dataset": spec["dataset"],
                  "model": spec["model"], "sweep": spec["sweep"], "base": state["base"],
                  "classes": ok[0]["data"]["classes"], "train_examples": ok[0]["data"]["train_rows"],
                  "test_examples": ok[0]["data"]["test_rows"], "runs": [o["run"] for o in ok]}
        self.results[exp_id] = result
        self.timings[exp_id] = [o["seconds"] for o in ok]
        best, best_acc = None, -1.0
        for o in ok:             # the serial Runner's rule: the first non-diverged run with the best test accuracy
            if o["run"]["test_accuracy"] > best_acc and not o["run"]["diverged"]:
                best, best_acc = o, o["run"]["test_accuracy"]
        self.models[exp_id] = None if best is None else self._rebuild(spec, best)
        return True

    def _rebuild(self, spec, out):
        """The best run's model, rebuilt on the client from the weights the worker sent back."""
        from . import classifier as C
        info = out["data"]
        inputs, outputs = out["weights"][0][0].shape[0], info["classes"]
        build = self.builders[spec["model"]]
        model = (build(inputs, outputs) if spec["model"] == "softmax"
                 else build(inputs, outputs, getattr(C, out["run"]["setting"]["activation"])))
        for layer, (w, b) in zip(model.layers, out["weights"]):
            layer.w = w
            if b is not None:
                layer.b = b
        return model

    def data(self, name):
        raise RuntimeError("ClusterRunner loads data on the workers; see data_info")
