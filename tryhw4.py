#!/usr/bin/env python3
"""tryhw4.py — the homework's experiments, on pynet.

With no arguments it does what the homework's script did: load MNIST (with the bias column),
train the softmax model for 1000 iterations (batch 128, rate 0.01, momentum 0.9, decay 0) and print
training and test accuracy. ``--experiment N`` runs one experiment of the homework by its section
number, ``--all`` runs them all, ``--extras`` runs experiments 4.1-4.5 beyond the homework
(pynet/extras.py: the lecture's claims on one-vs-rest, vanishing, dying and exploding gradients and
dropout, measured), and ``--report DIR`` writes the write-up (report.md, report.html, report.pdf,
the plots and results.json). ``--impl FILE`` runs them on your own five functions in
FILE (a classifier.py from ``python -m pynet homework init``) in a Python training loop, and says
per run whether it reproduces pynet's C loop. ``python tryhw4.py --help`` lists everything.

The models are defined right here, as in the homework: edit softmax_model, neural_net or
three_layer_net and rerun.
"""
import argparse
import os
import sys
import time

try:
    import pynet
except ImportError as e:   # e.g. a checkout whose C core is not built: say so in one line
    sys.exit("tryhw4.py: %s" % e)
from pynet import (LOGISTIC, SOFTMAX, accuracy_model, make_layer, make_model, train_model)


def softmax_model(inputs, outputs):
    l = [make_layer(inputs, outputs, SOFTMAX)]
    return make_model(l)


def neural_net(inputs, outputs, activation=LOGISTIC):
    l = [make_layer(inputs, 32, activation),
         make_layer(32, outputs, SOFTMAX)]
    return make_model(l)


def three_layer_net(inputs, outputs, activation=LOGISTIC):
    l = [make_layer(inputs, 64, activation),
         make_layer(64, 32, activation),
         make_layer(32, outputs, SOFTMAX)]
    return make_model(l)


BUILDERS = {"softmax": softmax_model, "neural_net": neural_net, "three_layer_net": three_layer_net}


class UsageError(Exception):
    """A bad command line or environment: reported in one line, exit status 2."""


def read_dataset(name, data_dir):
    """(train, test, source) with the bias column, as the homework's loader made them."""
    from pynet import datasets
    from pynet.experiments import MissingData
    try:
        folder, is_sample = datasets.locate(name, "train", data_dir)
        train = datasets.load(name, "train", root=data_dir, bias=True)
        test = datasets.load(name, "test", root=data_dir, bias=True)
    except (FileNotFoundError, ValueError) as e:
        raise MissingData("%s: %s" % (name, e)) from None
    return train, test, "%s, %s" % (name, "the sample bundled with pynet" if is_sample else folder)


def load_dataset(name, data_dir, limit=None):
    """(train, test, source) with the bias column; ``source`` says where they came from. With
    ``limit``, only the first ``limit`` rows of each (views, not copies). Each dataset is read once
    per process (on a Dask cluster: once per worker), from the path it is found at."""
    from pynet.sweep import cached_data
    train, test, source = cached_data(read_dataset, name, data_dir)
    if limit:
        train, test = train.head(limit), test.head(limit)
        source += ", first %d rows" % limit
    return train, test, source


def homework(args):
    """The homework's own script: the softmax model with its defaults."""
    from pynet.experiments import MissingData
    print("loading data...")
    try:
        train, test, _ = load_dataset("mnist", args.data, args.limit)
    except MissingData as e:
        raise UsageError(str(e)) from None
    print("done")
    print()
    print("training model...")
    batch = 128
    iters = args.iters if args.iters is not None else 1000
    rate = .01
    momentum = .9
    decay = .0

    m = softmax_model(train.X.cols, train.y.cols)
    train_model(m, train, batch, iters, rate, momentum, decay, progress=not args.quiet)
    print("done")
    print()
    print("evaluating model...")
    print("training accuracy: %f" % accuracy_model(m, train))
    print("test accuracy:     %f" % accuracy_model(m, test))
    return 0


def check_writable(folder):
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise UsageError("--report takes a folder (the report's files go into it), but %s is a file; "
                         "give a folder such as %s" % (folder, os.path.splitext(folder)[0] or "report"))
    try:
        os.makedirs(folder, exist_ok=True)
        probe = os.path.join(folder, ".pynet-write-test.%d" % os.getpid())
        with open(probe, "w") as f:
            f.write("ok")
        os.unlink(probe)
    except OSError as e:
        raise UsageError("cannot write the report folder %s: %s" % (folder, e.strerror or e)) from None


def experiments(args, ids, extra_ids=()):
    from pynet import experiments as ex
    from pynet import extras
    from pynet import report
    from pynet.homework.loop import Implementation, ImplementationError, summary

    report_dir = args.report
    if report_dir:
        check_writable(report_dir)
    log = (lambda msg: None) if args.quiet else (lambda msg: print(msg, flush=True))
    meta = {"seed": args.seed, "iters": args.iters, "limit": args.limit, "version": pynet.__version__,
            "threads": pynet.get_threads()}
    impl = None
    if args.impl:   # first: its checks fork, before this process runs any threaded kernel
        try:
            impl = Implementation(args.impl)
        except ImplementationError as e:
            raise UsageError(str(e)) from None
        meta["implementation"] = {"file": impl.name, "check": impl.check}
        log("implementation: %s (homework check: %d of %d passed)" % (impl.name, impl.check["passed"],
                                                                     impl.check["total"]))
    started = time.perf_counter()
    sources = []

    def save(runner):
        if report_dir:
            results = {"seed": args.seed, "iters": args.iters, "limit": args.limit, "data": meta.get("data"),
                       "experiments": runner.results}
            if extra:
                results["extras"] = extra
            if impl:
                results["implementation"] = meta["implementation"]
            if meta.get("failed_runs"):
                results["failed_runs"] = meta["failed_runs"]
            report.write_json(os.path.join(report_dir, "results.json"), results)
            report.write_json(os.path.join(report_dir, "timings.json"),
                              dict({"threads": meta["threads"], "seconds": dict(runner.timings, **extra_times),
                                    "total_seconds": time.perf_counter() - started},
                                   **({"workers": meta["workers"]} if "workers" in meta else {})))

    def load(name):
        train, test, source = load_dataset(name, args.data, args.limit)
        sources.append("%s (%d training and %d test examples)" % (source, train.X.rows, test.X.rows))
        meta["data"] = "; ".join(sources)
        return train, test

    extra, extra_times = {}, {}
    if ids and (args.workers or args.scheduler):
        runner, failed = on_cluster(args, ex.resolve(ids), log, save, meta)
    else:
        runner, failed = serially(args, ids, load, log, save, meta, impl)
    if extra_ids:   # 4.x, beyond the homework: serially, in this process
        try:
            extra, extra_times = extras.run_all(extra_ids, runner.data if hasattr(runner, "data") else load,
                                                seed=args.seed, iters=args.iters, log=log,
                                                on_run=lambda exp_id: save(runner))
        except ex.MissingData as e:
            failed.extend(extra_ids)
            for i in extra_ids:
                meta.setdefault("skipped", {})[i] = str(e).splitlines()[0]
            print("tryhw4.py: %s skipped: %s" % (", ".join(extra_ids), str(e).splitlines()[0]), file=sys.stderr)
    total = time.perf_counter() - started
    if runner.results:   # the results table prints even with --quiet
        print("%s%-40s %-24s %9s %9s" % ("" if args.quiet else "\n", "experiment", "best setting", "train", "test"))
        for exp_id, result in runner.results.items():
            best = runner.best(exp_id)
            print("%-40s %-24s %8.2f%% %8.2f%%" % (exp_id + " " + result["title"], best["label"],
                                                   100 * best["train_accuracy"], 100 * best["test_accuracy"]))
        if impl:
            print(summary(impl.name, runner.results))
    if extra:   # the answers print even with --quiet
        from pynet.report.extras import answer
        for exp_id, result in extra.items():
            verdict, text = answer(result, extra_times[exp_id])
            print("\n%s %s: the claim %s\n  %s" % (exp_id, result["title"], verdict, text))
    if runner.results or extra or not args.quiet:
        print("total %.1f s" % total)
    if report_dir and (runner.results or extra):
        save(runner)
        weights = None
        if any(ex.EXPERIMENTS[i]["model"] == "softmax" for i in runner.results):
            labels = runner.data_info["mnist"]["labels"] if hasattr(runner, "data_info") else runner.data("mnist")[0].labels
            weights = ex.softmax_weights(runner.results, runner.models, labels)
        files = report.write_report(report_dir, runner.results, runner.timings, meta, weights, extra, extra_times)
        if not report.have_matplotlib():
            print("tryhw4.py: " + report.PLOT_HINT, file=sys.stderr)
        print("report: %s (%s)" % (os.path.join(report_dir, "report.md"), ", ".join(files[:3])))
    return 1 if failed or meta.get("failed_runs") else 0


def serially(args, ids, load, log, save, meta, impl=None):
    """Every run in this process, one after another: (runner, experiments that did not run). With
    ``impl`` each run is also trained on the student's functions and compared with the C run."""
    from pynet import experiments as ex
    from pynet.homework.loop import ImplementationError
    runner = ex.Runner(BUILDERS, load, seed=args.seed, iters=args.iters,
                       progress=(not args.quiet) and sys.stderr.isatty(), log=log,
                       on_run=lambda *a: save(runner), impl=impl)
    failed = []
    for exp_id in ex.resolve(ids):
        reason = ex.skip_reason(exp_id, failed)
        if reason:
            failed.append(exp_id)
            meta.setdefault("skipped", {})[exp_id] = reason
            print("tryhw4.py: %s skipped: %s" % (exp_id, reason), file=sys.stderr)
            continue
        try:
            runner.run(exp_id)
        except ImplementationError as e:
            raise UsageError("%s; results so far are in %s" % (e, args.report) if args.report else str(e)) from None
        except ex.MissingData as e:
            failed.append(exp_id)
            runner.results.pop(exp_id, None)
            runner.timings.pop(exp_id, None)
            meta.setdefault("skipped", {})[exp_id] = str(e).splitlines()[0]
            print("tryhw4.py: %s skipped: %s" % (exp_id, str(e).splitlines()[0]), file=sys.stderr)
    return runner, failed


def on_cluster(args, ids, log, save, meta):
    """The runs as Dask tasks, on a LocalCluster of --workers processes or the cluster at --scheduler:
    (runner, experiments that did not run). Results and report are the serial ones."""
    from pynet import sweep
    from pynet.experiments import EXPERIMENTS

    def note(runner):   # what the serial path's load() and skip messages put in meta
        meta.pop("skipped", None)
        if runner.skipped:
            meta["skipped"] = dict(runner.skipped)
        if runner.failed_runs:
            meta["failed_runs"] = list(runner.failed_runs)
        threads = sorted(set(runner.threads_used))
        if threads:
            meta["threads"] = threads[0] if len(threads) == 1 else "%d to %d" % (threads[0], threads[-1])
        meta["data"] = "; ".join("%s (%d training and %d test examples)" % (
            d["source"], d["train_rows"], d["test_rows"]) for d in runner.data_info.values())

    try:
        client = sweep.local_client(args.workers) if args.workers else sweep.remote_client(args.scheduler)
    except ImportError as e:
        raise UsageError("--%s: %s" % ("workers" if args.workers else "scheduler", e)) from None
    except OSError as e:
        raise UsageError(str(e)) from None
    try:
        try:
            client.wait_for_workers(1, timeout=60)
        except TimeoutError:
            raise UsageError("the Dask scheduler at %s has no workers (waited 60 s); start some with: "
                             "dask worker %s" % (args.scheduler, args.scheduler)) from None
        meta["workers"] = len(client.scheduler_info(n_workers=-1)["workers"])
        runner = sweep.ClusterRunner(client, BUILDERS, load_dataset, data_dir=args.data, limit=args.limit,
                                     seed=args.seed, iters=args.iters, threads=args.threads, log=log,
                                     warn=lambda msg: print("tryhw4.py: " + msg, file=sys.stderr),
                                     on_run=lambda *a: (note(runner), save(runner)))
        runs = sum(len(EXPERIMENTS[i].get("values", [None])) for i in ids)
        log("%d run%s on %d Dask worker%s (%s)" % (
            runs, "" if runs == 1 else "s", meta["workers"], "" if meta["workers"] == 1 else "s",
            "a local cluster" if args.workers else "scheduler %s" % args.scheduler))
        failed = runner.run_all(ids)
    finally:
        cluster = getattr(client, "cluster", None) if args.workers else None
        client.close()
        if cluster is not None:
            cluster.close()
    note(runner)
    return runner, failed


def parse_args(argv):
    from pynet.experiments import EXPERIMENTS
    from pynet.extras import EXTRAS
    listing = "; ".join("%s %s" % (k, v["title"]) for k, v in list(EXPERIMENTS.items()) + list(EXTRAS.items()))
    p = argparse.ArgumentParser(
        prog="tryhw4.py",
        description="The homework's experiments on pynet. With no options: train and evaluate the softmax "
                    "model on MNIST, as the homework's script does.",
        epilog="Experiments: " + listing + ". Data: MNIST and CIFAR-10 are looked up in --data, else "
               "$PYNET_DATA/<name>, else ~/.cache/pynet/<name>; MNIST falls back to the small sample bundled "
               "with pynet. Get the full sets with: python -m pynet.datasets download mnist|cifar10")
    p.add_argument("--experiment", "-e", action="append", metavar="N",
                   help="run experiment N (its section number, e.g. 2.2.2); repeat for several")
    p.add_argument("--all", action="store_true", help="run every experiment of the homework (2.2.1 to 3.2.1)")
    p.add_argument("--extras", action="store_true",
                   help="run experiments 4.1-4.5 beyond the homework (the lecture's claims, measured; MNIST; "
                        "with --iters, 4.4 and 4.5 run the fewest epochs of at least that many steps)")
    p.add_argument("--report", metavar="DIR",
                   help="write report.md, report.html, report.pdf, plots, results.json and timings.json to DIR "
                        "(with no --experiment/--all, runs 2.2.1)")
    p.add_argument("--data", metavar="DIR", help="folder holding the datasets (mnist/ and cifar10/ inside it, or "
                                                 "the dataset's files directly)")
    p.add_argument("--iters", type=int, metavar="N", help="override every run's number of iterations")
    p.add_argument("--limit", type=int, metavar="N",
                   help="use only the first N training and N test examples of each dataset (quick checks)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0); the same seed gives the same numbers")
    p.add_argument("--impl", metavar="FILE",
                   help="run the experiments on the five functions in FILE (your classifier.py) in a Python "
                        "training loop and say per run whether it matches pynet's C loop (with no "
                        "--experiment/--all, runs 2.2.1; serial only, not with --workers/--scheduler)")
    p.add_argument("--threads", type=int, metavar="N",
                   help="threads for the C kernels (default: all cores; with --workers or --scheduler, a machine's "
                        "cores / the runs it runs at once)")
    p.add_argument("--workers", type=int, metavar="N",
                   help="run the experiments' runs on a local Dask cluster of N worker processes "
                        "(needs: pip install 'dask[distributed]')")
    p.add_argument("--scheduler", metavar="ADDRESS",
                   help="run them on the Dask cluster whose scheduler is at ADDRESS (e.g. tcp://10.0.0.1:8786)")
    p.add_argument("--quiet", "-q", action="store_true", help="no progress lines or per-run output (the results table still prints)")
    args = p.parse_args(argv)
    if args.iters is not None and args.iters < 1:
        p.error("--iters must be >= 1, got %d" % args.iters)
    if args.limit is not None and args.limit < 1:
        p.error("--limit must be >= 1, got %d" % args.limit)
    if args.seed < 0:
        p.error("--seed must be >= 0, got %d" % args.seed)
    if args.threads is not None and args.threads < 1:
        p.error("--threads must be >= 1, got %d" % args.threads)
    if args.workers is not None and args.workers < 1:
        p.error("--workers must be >= 1, got %d" % args.workers)
    if args.workers and args.scheduler:
        p.error("--workers starts a local cluster and --scheduler uses an existing one: give one of them")
    if args.impl and (args.workers or args.scheduler):
        p.error("--impl runs the student's code in this process, one run after another: leave out "
                "--workers/--scheduler")
    if (args.workers or args.scheduler) and not (args.all or args.extras or args.experiment or args.report):
        p.error("--workers and --scheduler run experiments: add --all, --experiment N or --report DIR")
    for e in args.experiment or []:
        if e not in EXPERIMENTS and e not in EXTRAS:
            p.error("unknown experiment %r; valid: %s" % (e, ", ".join(list(EXPERIMENTS) + list(EXTRAS))))
    if args.impl and (args.extras or any(e in EXTRAS for e in args.experiment or [])):
        p.error("--impl runs the homework's experiments on your five functions; 4.1-4.5 use features beyond "
                "them (clipping, layer norm, dropout): run those without --impl")
    return args


def main(argv=None):
    from pynet.experiments import EXPERIMENTS, ORDER
    from pynet.extras import EXTRAS
    args = parse_args(argv)
    pynet.set_seed(args.seed)
    if args.threads and not (args.workers or args.scheduler):
        pynet.set_threads(args.threads)
    try:
        extra_ids = list(EXTRAS) if args.extras else [e for e in EXTRAS if e in (args.experiment or [])]
        if args.all or args.experiment or extra_ids:
            return experiments(args, ORDER if args.all else [e for e in args.experiment or [] if e in EXPERIMENTS],
                               extra_ids)
        if args.report or args.impl:
            return experiments(args, ["2.2.1"])
        return homework(args)
    except UsageError as e:
        print("tryhw4.py: %s" % e, file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("\ntryhw4.py: interrupted%s" % (
            "; results so far are in %s" % os.path.join(args.report, "results.json") if args.report else ""),
            file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
