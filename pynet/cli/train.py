"""python -m pynet train: build an MLP for the data, train it with pynet.fit, save it and its log."""
import csv
import io
import os
import re
import sys
import time

from .common import CLIError, CLIUsageError, _check_writable, _data_source, _info, _load_data, _seconds, _set_threads
from .._files import atomic_file
from ..config import OPTIONS, check_options
from ..datasets import image_shape as _image_shape


def _check_train_args(a):
    if a.patience is not None and a.validation == 0:
        raise CLIError("--patience needs a validation split (--validation > 0)")
    if a.schedule == "step" and a.step_size is None:
        raise CLIError("--schedule step needs --step-size (epochs between rate cuts)")
    if a.schedule != "step" and a.step_size is not None:
        raise CLIError("--step-size only applies to --schedule step")
    if a.warmup >= a.epochs and a.warmup:
        raise CLIError("--warmup %d must be shorter than --epochs %d" % (a.warmup, a.epochs))
    if a.rate is None:
        a.rate = 0.05 if a.optimizer == "sgd" else 0.001
    try:   # the C core's range check of every training option, before any data is read
        check_options("train", **_training_options(a))
    except (TypeError, ValueError) as e:
        raise CLIUsageError("%s (see python -m pynet train --help)" % _as_flags(str(e))) from None
    if a.log is not None:
        _check_writable(a.log, "--log", "history.csv")
    if a.out is not None:
        _check_writable(a.out, "--out", "model.npz")
    if a.checkpoint is not None:
        _check_writable(a.checkpoint, "--checkpoint", "run.ckpt")
    if a.resume is not None and not os.path.isfile(a.resume):
        raise CLIError("--resume %s: no such checkpoint file" % a.resume)


def _as_flags(message):
    """A training option's check message (which names the C fields: "train: min_rate must be ...")
    with the command line's flags instead ("--min-rate must be ...")."""
    if message.startswith("train: "):
        message = message[len("train: "):]
    names = "|".join(o.name for o in OPTIONS if o.public)
    return re.sub(r"\b(%s)\b(?=( must| >| <|,| and|=| \(|\)|;|$))" % names,
                  lambda m: "--" + m.group(1).replace("_", "-"), message)


def _training_options(a):
    """fit's training options (pynet.config) from the parsed command line."""
    return {o.name: getattr(a, o.name) for o in OPTIONS if o.public}


def _resolve_layers(sizes, features, classes, data):
    sizes = list(sizes)
    if sizes[0] is None:
        sizes[0] = features
    if sizes[-1] is None:
        sizes[-1] = classes
    if sizes[0] != features:
        raise CLIError("--layers starts with %d inputs but %s has %d features per example; start with %d "
                       "(or 'auto')" % (sizes[0], data, features, features))
    if sizes[-1] != classes:
        raise CLIError("--layers ends with %d outputs but %s has %d classes; end with %d (or 'auto')"
                       % (sizes[-1], data, classes, classes))
    return sizes


def _standardizer(kind, X):
    from ..training import Standardizer
    return Standardizer.fit(X, per_feature=kind == "feature")


def cmd_train(a):
    import pynet
    from ..training import fit, split_validation
    start = time.perf_counter()
    _check_train_args(a)
    _set_threads(a.threads)
    pynet.set_seed(a.seed)

    d, name = _load_data(a.data, "train", a.root, a.subset)
    features, classes = d.X.cols, d.y.cols
    sizes = _resolve_layers(a.layers, features, classes, a.data)
    val = None
    if a.validation > 0:
        if round(len(d) * a.validation) < 1 or round(len(d) * a.validation) >= len(d):
            raise CLIError("--validation %g of %d examples leaves no examples on one side" % (a.validation, len(d)))
        rows, val = split_validation(d, a.validation)
        d = type(d)(d.X.data[rows], d.y.data[rows], d.labels)
    if a.batch > len(d):
        raise CLIError("--batch %d is larger than the %d training examples" % (a.batch, len(d)))
    standardizer = None
    if a.standardize != "none":
        standardizer = _standardizer(a.standardize, d.X.data)
        standardizer.apply(d)
        if val is not None:
            standardizer.apply(val)
    loaded = time.perf_counter()
    _info("data: %s from %s: %d training examples%s, %d features, %d classes (loaded in %s)"
          % (a.data, _data_source(a.data, name, a.root), len(d),
             "" if val is None else " + %d held out for validation" % len(val), features, classes,
             _seconds(loaded - start)), a.quiet)

    m = pynet.make_mlp(sizes, a.activation, bias=a.bias, dropout=a.dropout, input_dropout=a.input_dropout,
                       norm=a.layer_norm)
    layers = m.layers
    m.labels = d.labels
    m.standardizer = standardizer
    _info("model: %s%s%s; %d parameters" % (m, ", bias" if a.bias else "", ", layer norm" if a.layer_norm else "",
                                            sum(l.inputs * l.outputs + (l.outputs if a.bias else 0) +
                                                (2 * l.outputs if l.norm else 0) for l in layers)),
          a.quiet)

    logged = []
    if a.resume is not None:   # the log goes on from the epochs the checkpoint holds
        from ..checkpoint import CheckpointError, _read
        try:
            logged = list(_read(a.resume)[0]["epochs"])
        except CheckpointError as e:
            raise CLIError(str(e)) from None

    def on_epoch(record):   # the log is written as epochs finish, so Ctrl-C or a crash keeps it
        logged.append(record)
        if a.log is not None:
            _write_log(a.log, logged)

    history = fit(m, d, epochs=a.epochs, **_training_options(a), validation=val,
                  patience=a.patience, progress=not a.quiet, diagnostics=a.diagnostics, on_epoch=on_epoch,
                  checkpoint=a.checkpoint, resume=a.resume)
    trained = time.perf_counter()
    del d
    result = {"epochs_run": len(history.epochs), "best_epoch": history.best_epoch,
              "stopped_early": history.stopped_early, "interrupted": history.interrupted,
              "train_seconds": round(trained - loaded, 3)}
    if history.interrupted:
        return _interrupted(a, m, history, result, sizes, name, features, classes)
    if val is not None:
        best = history.epochs[history.best_epoch - 1]
        result["val_accuracy"], result["val_loss"] = best["val_accuracy"], best["val_loss"]
    if a.test:
        test, _ = _load_data(a.data, "test", a.root, None)
        if standardizer is not None:
            standardizer.apply(test)
        result["test_loss"], result["test_accuracy"] = pynet.evaluate_model(m, test)
        del test
    result["total_seconds"] = round(time.perf_counter() - start, 3)

    _model_info(a, m, history, result, sizes, name, features, classes)
    if history.diagnostics is not None:
        from ..diagnostics import summary
    if a.log is not None:
        _write_log(a.log, history.epochs)
    if a.out is not None:
        pynet.save_model(m, a.out)

    lines = []
    if val is not None:
        lines.append("best epoch %d of %d%s: validation accuracy %.2f%%, loss %.4f"
                     % (history.best_epoch, len(history.epochs), " (stopped early)" if history.stopped_early else "",
                        100 * result["val_accuracy"], result["val_loss"]))
    else:
        last = history.epochs[-1]
        lines.append("trained %d epochs: final training-batch accuracy %.2f%%, loss %.4f"
                     % (len(history.epochs), 100 * last["train_accuracy"], last["train_loss"]))
    if history.diagnostics is not None:
        lines.append(summary(history.diagnostics))
    if a.test:
        lines.append("test accuracy %.2f%% (loss %.4f) on %s's test split"
                     % (100 * result["test_accuracy"], result["test_loss"], a.data))
    if a.out is not None:
        lines.append("saved %s" % a.out)
    lines.append("time: %s total (data %s, training %s)"
                 % (_seconds(time.perf_counter() - start), _seconds(loaded - start), _seconds(trained - loaded)))
    print("\n".join(lines))
    return 0


def _model_info(a, m, history, result, sizes, name, features, classes):
    import pynet
    options = {k: v for k, v in vars(a).items()
               if k not in ("command", "argv", "quiet", "out", "log", "checkpoint", "resume")}
    options["layers"] = sizes
    m.info = {"data": {"name": name or os.path.abspath(str(a.data)), "features": features, "classes": classes,
                       "image_shape": _image_shape(features, name)},
              "train": options, "result": result, "history": history.epochs,
              "command": "python -m pynet " + " ".join(a.argv),
              "threads": pynet.get_threads()}
    if history.diagnostics is not None:
        from ..diagnostics import to_json
        m.info["diagnostics"] = to_json(history.diagnostics)


def _interrupted(a, m, history, result, sizes, name, features, classes):
    """Ctrl-C during training: save what there is (model, log), say so in one line, exit 130."""
    import pynet
    _model_info(a, m, history, result, sizes, name, features, classes)
    saved = []
    if a.log is not None:
        _write_log(a.log, history.epochs)
        saved.append("the log in %s" % a.log)
    if a.out is not None:
        pynet.save_model(m, a.out)
        kept = ("the best epoch's (%d) weights" % history.best_epoch if history.best_epoch is not None
                else "the last weights")
        saved.append("%s in %s" % (kept, a.out))
    if a.checkpoint is not None and history.epochs:
        saved.append("a checkpoint of epoch %d in %s (--resume %s continues)"
                     % (history.epochs[-1]["epoch"], a.checkpoint, a.checkpoint))
    n = len(history.epochs)
    sys.stderr.write("pynet: interrupted after %d finished epoch%s (%d steps)%s\n" % (
        n, "" if n == 1 else "s", len(history.losses), "; saved " + ", ".join(saved) if saved else "; nothing saved "
        "(give --out, --log or --checkpoint to keep the model, the log or the state)"))
    return 130


def _write_log(path, epochs):
    """The per-epoch history as CSV, written atomically (a temporary file renamed over path)."""
    keys = ["epoch", "train_loss", "train_accuracy", "val_loss", "val_accuracy", "rate", "seconds"]
    text = io.StringIO()
    w = csv.DictWriter(text, fieldnames=keys, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in epochs:
        w.writerow(r)
    with atomic_file(path, durable=True) as f:
        f.write(text.getvalue().encode())
