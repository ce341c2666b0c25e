"""pynet's command line: ``python -m pynet train|eval|predict``.

- ``train`` builds a multi-layer perceptron for a dataset (MNIST, CIFAR-10, or a folder that
  pynet.datasets.load understands), trains it with pynet.fit — every trick fit offers is an option —
  shows one line per epoch, optionally evaluates it on the test split once at the end, and saves it.
- ``eval`` reports a saved model's loss and accuracy on a dataset split, per class, and optionally
  its confusion matrix.
- ``predict`` classifies PNG images with a saved model.

Bad input (an unknown dataset, layer sizes that do not fit the data, a missing or corrupt model
file, an image of the wrong size, an unwritable --out, ...) ends the program with a one-line
message on stderr and exit status 1 (2 for a malformed command line), never a traceback. Results go
to stdout; progress and per-epoch lines to stderr.
"""
import argparse
import csv
import io
import json
import math
import os
import sys
import textwrap
import time

import numpy as np

__all__ = ["main", "build_parser"]

HIDDEN_ACTIVATIONS = ("relu", "lrelu", "tanh", "logistic", "linear")
# What the known datasets' rows are: the image each row of X came from (height, width, channels).
IMAGE_SHAPES = {"mnist": (28, 28, 1), "cifar10": (32, 32, 3)}


class CLIError(Exception):
    """A problem with the user's input, reported as one line (no traceback)."""


# ---- argument types ------------------------------------------------------------------------------

def _type(convert, check, wanted):
    def parse(text):
        try:
            value = convert(text)
        except ValueError:
            raise argparse.ArgumentTypeError("expected %s, got %r" % (wanted, text)) from None
        if not check(value):
            raise argparse.ArgumentTypeError("expected %s, got %r" % (wanted, text))
        return value
    parse.__name__ = wanted   # argparse shows it in "invalid ... value" messages
    return parse


positive_int = _type(int, lambda v: v >= 1, "an integer >= 1")
nonneg_int = _type(int, lambda v: v >= 0, "an integer >= 0")
positive_float = _type(float, lambda v: math.isfinite(v) and v > 0, "a number > 0")
nonneg_float = _type(float, lambda v: math.isfinite(v) and v >= 0, "a number >= 0")
finite_float = _type(float, math.isfinite, "a finite number")
probability = _type(float, lambda v: 0 <= v < 1, "a probability in [0, 1)")
unit_fraction = _type(float, lambda v: 0 <= v < 1, "a fraction in [0, 1)")


def layer_sizes(text):
    """'784,1024,10' or 'auto,1024,auto': sizes >= 1; 'auto' only at either end."""
    parts = [p.strip().lower() for p in text.split(",")]
    if len(parts) < 2:
        raise argparse.ArgumentTypeError(
            "expected at least two comma-separated sizes (inputs,...,classes), got %r" % text)
    sizes = []
    for i, p in enumerate(parts):
        if p == "auto" and i in (0, len(parts) - 1):
            sizes.append(None)
            continue
        try:
            n = int(p)
        except ValueError:
            n = 0
        if n < 1:
            raise argparse.ArgumentTypeError(
                "layer sizes must be integers >= 1 ('auto' is allowed for the first and last), got %r in %r"
                % (p, text))
        sizes.append(n)
    return sizes


# ---- the parser ----------------------------------------------------------------------------------

class _Parser(argparse.ArgumentParser):
    """Command-line mistakes are reported in one line (not the whole usage block), exit status 2."""

    def error(self, message):
        self.exit(2, "%s: error: %s (see %s --help)\n" % (self.prog, message, self.prog))


class _Formatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the epilog's layout and shows each option's default, unless it is None or False or
    the help already says it."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.default not in (None, False, argparse.SUPPRESS) and "default" not in text and \
                action.option_strings:
            text += " (default: %(default)s)"
        return text


TRAIN_EPILOG = """\
dropout: --input-dropout drops pixels (the first layer's input); --dropout drops the units of every
hidden layer (the input of each later layer), as in Srivastava et al. (2014), whose MNIST MLPs use
0.2 on the input and 0.5 on hidden units. Dropout is inverted (kept units are scaled by 1/(1-p)),
so evaluation needs no rescaling, and it is off when the model is evaluated or used to predict.

decay: with --optimizer sgd it is the homework's lambda in v = dw - lambda*w + momentum*v, with dw
summed over the batch and the step rate/batch, so each step shrinks w by rate*lambda/batch (the
usual L2 coefficient is lambda/batch). With adam it is decoupled (AdamW): w -= rate*decay*w.
Biases are never decayed.

validation: a random --validation share of the training split is held out (never trained on);
each epoch is evaluated on it, the best epoch's weights (by validation accuracy) are the ones kept,
and --patience stops early. The test split is used only when --test asks for it, once, at the end.

standardize: "global" subtracts the training pixels' mean and divides by their standard deviation
(one number each); "feature" does it per input (pixels that never vary become 0); the statistics
travel in the saved model and eval/predict apply them.

examples:
  python -m pynet train --data mnist --layers 784,1024,1024,10 --activation relu --epochs 20 \\
      --optimizer sgd --rate 0.05 --schedule cosine --warmup 1 --input-dropout 0.2 --dropout 0.5 --test --out mnist.npz
  python -m pynet train --data cifar10 --layers auto,1024,512,auto --epochs 2 --subset 5000
"""


def _fill(text):
    return textwrap.fill(text, 100)


def build_parser():
    p = _Parser(
        prog="python -m pynet",
        description="Train, evaluate and use multi-layer perceptrons with pynet.",
        epilog="Run 'python -m pynet COMMAND --help' for a command's options.")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    t = sub.add_parser("train", help="train an MLP on a dataset and save it", formatter_class=_Formatter,
                       description=_fill("Train a multi-layer perceptron (hidden layers with --activation, a "
                                         "softmax output, cross-entropy loss) and save it."), epilog=TRAIN_EPILOG)
    g = t.add_argument_group("data")
    g.add_argument("--data", default="mnist", metavar="NAME",
                   help="'mnist', 'cifar10', or a folder of data pynet.datasets.load reads (also class folders: "
                        "DIR/<class>/*.png, or DIR/train/<class>/ and DIR/test/<class>/)")
    g.add_argument("--root", metavar="DIR",
                   help="folder holding the dataset's files (default: $PYNET_DATA/<name>, then the cache)")
    g.add_argument("--subset", type=positive_int, metavar="N",
                   help="train on the first N training examples only (quick trials)")
    g.add_argument("--standardize", choices=("none", "global", "feature"), default="global",
                   help="input standardisation learnt from the training examples (see below)")
    g.add_argument("--validation", type=unit_fraction, default=0.1, metavar="FRACTION",
                   help="share of the training split held out for validation and model selection (0: none)")
    g = t.add_argument_group("model")
    g.add_argument("--layers", type=layer_sizes, default=layer_sizes("auto,1024,1024,auto"), metavar="SIZES",
                   help="comma-separated layer widths, inputs first and classes last; 'auto' at either end "
                        "takes the size from the data (default: auto,1024,1024,auto)")
    g.add_argument("--activation", choices=HIDDEN_ACTIVATIONS, default="relu",
                   help="activation of the hidden layers (the output layer is always softmax)")
    g.add_argument("--bias", action=argparse.BooleanOptionalAction, default=True,
                   help="give every layer a bias (the homework's layers have none)")
    g.add_argument("--layer-norm", action="store_true",
                   help="normalise every hidden layer's pre-activation per example, with a learnt gain and "
                        "shift per unit (layer normalisation; the output layer is left as it is)")
    g.add_argument("--dropout", type=probability, default=0.0, metavar="P",
                   help="dropout rate of the hidden units (the input of every layer after the first)")
    g.add_argument("--input-dropout", type=probability, default=0.0, metavar="P",
                   help="dropout rate of the input features (the first layer's input)")
    g = t.add_argument_group("training")
    g.add_argument("--epochs", type=positive_int, default=10, metavar="N", help="passes over the training data")
    g.add_argument("--batch", type=positive_int, default=128, metavar="N", help="examples per step")
    g.add_argument("--optimizer", choices=("sgd", "adam"), default="sgd",
                   help="SGD with momentum (the homework's rule) or Adam")
    g.add_argument("--rate", type=positive_float, metavar="R",
                   help="peak learning rate (default: 0.05 for sgd, 0.001 for adam)")
    g.add_argument("--momentum", type=nonneg_float, default=0.9, metavar="M", help="SGD momentum")
    g.add_argument("--decay", type=nonneg_float, default=0.0, metavar="L", help="weight decay (see below)")
    g.add_argument("--beta1", type=probability, default=0.9, metavar="B", help="Adam's first-moment decay")
    g.add_argument("--beta2", type=probability, default=0.999, metavar="B", help="Adam's second-moment decay")
    g.add_argument("--eps", type=positive_float, default=1e-8, metavar="E", help="Adam's denominator guard")
    g.add_argument("--schedule", choices=("constant", "step", "cosine"), default="constant",
                   help="learning-rate schedule: constant; step (times --gamma every --step-size epochs); "
                        "cosine (half cosine from --rate to --min-rate over the run)")
    g.add_argument("--warmup", type=nonneg_int, default=0, metavar="EPOCHS",
                   help="epochs of linear warm-up from 0 to --rate before the schedule starts")
    g.add_argument("--step-size", type=positive_int, metavar="EPOCHS", help="step schedule: epochs between cuts")
    g.add_argument("--gamma", type=positive_float, default=0.1, metavar="G", help="step schedule: factor per cut")
    g.add_argument("--min-rate", type=nonneg_float, default=0.0, metavar="R", help="cosine schedule: final rate")
    g.add_argument("--clip", type=nonneg_float, default=0.0, metavar="NORM",
                   help="clip each step's gradient (of the mean loss) to this global norm (0: off)")
    g.add_argument("--diagnostics", type=positive_int, nargs="?", const=True, metavar="N",
                   help="record per-layer gradient norms, dead/saturated units and update ratios every N "
                        "steps (default 10), print the last and keep them in the model file's info")
    g.add_argument("--patience", type=positive_int, metavar="EPOCHS",
                   help="stop after this many epochs without a better validation accuracy")
    g = t.add_argument_group("run")
    g.add_argument("--seed", type=nonneg_int, default=1, metavar="N",
                   help="seed of every random choice (initial weights, validation split, shuffles, dropout); "
                        "the same seed gives the same run, with any --threads")
    g.add_argument("--threads", type=positive_int, metavar="N", help="threads for the C kernels (default: all cores)")
    g.add_argument("--test", action="store_true",
                   help="after training, evaluate the kept model once on the test split and report it")
    g.add_argument("--out", metavar="PATH", help="save the trained model here (.npz; see docs/TRAINING.md)")
    g.add_argument("--log", metavar="PATH", help="write the per-epoch history here as CSV (after every epoch)")
    g.add_argument("--checkpoint", metavar="PATH",
                   help="save the whole training state here after every epoch (atomically), for --resume")
    g.add_argument("--resume", metavar="PATH",
                   help="continue the run saved in this --checkpoint file (same data, model and settings; "
                        "--epochs may grow, except with --schedule cosine); ends with the same weights as an "
                        "uninterrupted run")
    g.add_argument("--quiet", action="store_true", help="no progress or per-epoch lines")

    e = sub.add_parser("eval", help="evaluate a saved model on a dataset split", formatter_class=_Formatter,
                       description=_fill("Loss, accuracy and per-class accuracy of a saved model on a dataset "
                                         "split (the model's standardisation is applied to the data)."))
    e.add_argument("model", help="a model file saved by 'train' or pynet.save_model")
    e.add_argument("--data", metavar="NAME",
                   help="'mnist', 'cifar10' or a folder (default: the dataset the model was trained on)")
    e.add_argument("--root", metavar="DIR", help="folder holding the dataset's files")
    e.add_argument("--split", choices=("test", "train"), default="test", help="which split to evaluate on")
    e.add_argument("--subset", type=positive_int, metavar="N", help="use the first N examples only")
    e.add_argument("--confusion", action="store_true",
                   help="also print the confusion matrix (rows: true class, columns: predicted)")
    e.add_argument("--threads", type=positive_int, metavar="N", help="threads for the C kernels")
    e.add_argument("--json", action="store_true", help="print the results as one JSON object")

    r = sub.add_parser("predict", help="classify PNG images with a saved model", formatter_class=_Formatter,
                       description=_fill("Classify images with a saved model. Each image must have the size and "
                                         "channels of the model's training images: 28x28 greyscale for MNIST "
                                         "models (a white digit on black, like MNIST's), 32x32 RGB for CIFAR-10. "
                                         "Prints each image's most likely class and its probability."))
    r.add_argument("model", help="a model file saved by 'train' or pynet.save_model")
    r.add_argument("images", nargs="+", metavar="IMAGE", help="image files (PNG, or anything Pillow reads)")
    r.add_argument("--top", type=positive_int, default=1, metavar="K", help="show the K most likely classes")
    r.add_argument("--json", action="store_true", help="print one JSON object per image")
    from .homework import register as register_homework   # the homework's own commands
    register_homework(sub)
    return p


# ---- shared helpers ------------------------------------------------------------------------------

def _err(message):
    sys.stderr.write("pynet: error: %s\n" % message)
    sys.stderr.flush()


def _info(message, quiet=False):
    if not quiet:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()


def _seconds(s):
    if s < 60:
        return "%.1fs" % s
    m, s = divmod(s, 60)
    return "%dm%04.1fs" % (m, s)


def _dataset_name(data):
    """'mnist' / 'cifar10' for the known datasets (any spelling load accepts), else None (a folder)."""
    key = str(data).lower().replace("-", "").replace("_", "")
    return key if key in IMAGE_SHAPES else None


def _load_data(data, split, root, subset):
    from . import datasets
    name = _dataset_name(data)
    if name is None and not (os.sep in str(data) or str(data).startswith((".", "~")) or os.path.exists(str(data))):
        raise CLIError("unknown dataset %r: use mnist, cifar10, or a folder holding a dataset" % data)
    if name is None and root is not None:
        raise CLIError("--root is for the named datasets (mnist, cifar10); %r is already a folder" % data)
    d = datasets.load(name or data, split, root=root)
    if subset is not None and subset < len(d):
        d = type(d)(d.X.data[:subset], d.y.data[:subset], d.labels)
    return d, name


def _data_source(data, name, root):
    """Where the data was read from, for the log: the folder, or the bundled sample."""
    if name is None:
        return os.path.abspath(str(data))
    from . import datasets
    folder, is_sample = datasets.locate(name, "train", root)
    return "pynet's bundled sample (the full data set was not found)" if is_sample else str(folder)


def _image_shape(features, name):
    """(height, width, channels) of the images behind rows of `features` values: known for the
    named datasets; for other data, the square greyscale or RGB image with that many values."""
    if name in IMAGE_SHAPES:
        return IMAGE_SHAPES[name]
    for channels in (1, 3):
        side = math.isqrt(features // channels)
        if side * side * channels == features:
            return (side, side, channels)
    return None


def _check_writable(path, option, example):
    """Fail now, not after an hour of training, if `option`'s file cannot be written to path."""
    path = os.path.abspath(path)
    folder = os.path.dirname(path)
    if os.path.isdir(path):
        raise CLIError("%s %s is a folder; give a file name such as %s" % (option, path, os.path.join(path, example)))
    if not os.path.isdir(folder):
        raise CLIError("cannot write %s %s: the folder %s does not exist" % (option, path, folder))
    if not os.access(folder, os.W_OK | os.X_OK) or (os.path.exists(path) and not os.access(path, os.W_OK)):
        raise CLIError("cannot write %s %s: permission denied" % (option, path))


def _set_threads(n):
    import pynet
    if n is not None:
        pynet.set_threads(n)


# ---- train ---------------------------------------------------------------------------------------

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
    if a.log is not None:
        _check_writable(a.log, "--log", "history.csv")
    if a.out is not None:
        _check_writable(a.out, "--out", "model.npz")
    if a.checkpoint is not None:
        _check_writable(a.checkpoint, "--checkpoint", "run.ckpt")
    if a.resume is not None and not os.path.isfile(a.resume):
        raise CLIError("--resume %s: no such checkpoint file" % a.resume)


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
    from .training import Standardizer
    return Standardizer.fit(X, per_feature=kind == "feature")


def cmd_train(a):
    import pynet
    from .training import fit, split_validation
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

    layers = []
    for i in range(len(sizes) - 1):
        last = i == len(sizes) - 2
        layers.append(pynet.make_layer(sizes[i], sizes[i + 1], "softmax" if last else a.activation, bias=a.bias,
                                       dropout=a.input_dropout if i == 0 else a.dropout,
                                       norm=a.layer_norm and not last))
    m = pynet.make_model(layers)
    m.labels = d.labels
    m.standardizer = standardizer
    _info("model: %s%s%s; %d parameters" % (m, ", bias" if a.bias else "", ", layer norm" if a.layer_norm else "",
                                            sum(l.inputs * l.outputs + (l.outputs if a.bias else 0) +
                                                (2 * l.outputs if l.norm else 0) for l in layers)),
          a.quiet)

    logged = []
    if a.resume is not None:   # the log goes on from the epochs the checkpoint holds
        from .checkpoint import CheckpointError, _read
        try:
            logged = list(_read(a.resume)[0]["epochs"])
        except CheckpointError as e:
            raise CLIError(str(e)) from None

    def on_epoch(record):   # the log is written as epochs finish, so Ctrl-C or a crash keeps it
        logged.append(record)
        if a.log is not None:
            _write_log(a.log, logged)

    history = fit(m, d, epochs=a.epochs, batch=a.batch, optimizer=a.optimizer, rate=a.rate, momentum=a.momentum,
                  decay=a.decay, beta1=a.beta1, beta2=a.beta2, eps=a.eps, schedule=a.schedule, warmup=a.warmup,
                  step_size=a.step_size, gamma=a.gamma, min_rate=a.min_rate, clip=a.clip, validation=val,
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
        from .diagnostics import summary, to_json
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
        from .diagnostics import to_json
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
    from ._files import atomic_file
    with atomic_file(path, durable=True) as f:
        f.write(text.getvalue().encode())


# ---- eval ----------------------------------------------------------------------------------------

def _model_data_name(m, given, model_path):
    if given is not None:
        return given
    name = _model_data(m).get("name")
    if not isinstance(name, str) or not name:
        raise CLIError("%s does not say which data it was trained on; pass --data" % model_path)
    return name


def _check_fit(m, d, model_path, data):
    if d.X.cols != m.layers[0].inputs:
        raise CLIError("%s takes %d features per example but %s has %d" % (model_path, m.layers[0].inputs, data, d.X.cols))
    if d.y.cols != m.layers[-1].outputs:
        raise CLIError("%s predicts %d classes but %s has %d" % (model_path, m.layers[-1].outputs, data, d.y.cols))
    if m.labels is not None and d.labels is not None and list(m.labels) != list(d.labels):
        raise CLIError("%s was trained on the classes %s but %s has %s"
                       % (model_path, ", ".join(m.labels), data, ", ".join(d.labels)))


def cmd_eval(a):
    import pynet
    _set_threads(a.threads)
    m = pynet.load_model(a.model)
    data = _model_data_name(m, a.data, a.model)
    d, _ = _load_data(data, a.split, a.root, a.subset)
    _check_fit(m, d, a.model, data)
    if m.standardizer is not None:
        m.standardizer.apply(d)
    loss, accuracy = pynet.evaluate_model(m, d)
    predicted = np.argmax(pynet.predict_model(m, d.X).data, axis=1)
    truth = d.classes
    k = d.y.cols
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (truth, predicted), 1)
    names = list(m.labels or d.labels or [str(i) for i in range(k)])
    per_class = [{"class": names[i], "examples": int(confusion[i].sum()), "correct": int(confusion[i, i]),
                  "accuracy": float(confusion[i, i] / confusion[i].sum()) if confusion[i].sum() else None}
                 for i in range(k)]
    if a.json:
        out = {"model": a.model, "data": str(data), "split": a.split, "examples": len(d), "loss": loss,
               "accuracy": accuracy, "per_class": per_class}
        if a.confusion:
            out["confusion"] = confusion.tolist()
        print(json.dumps(out))
        return 0
    print("%s on %s %s (%d examples): accuracy %.2f%%, loss %.4f" % (a.model, data, a.split, len(d), 100 * accuracy, loss))
    width = max(5, max(len(n) for n in names))
    print("%-*s  %8s  %8s  %8s" % (width, "class", "examples", "correct", "accuracy"))
    for c in per_class:
        acc = "-" if c["accuracy"] is None else "%.2f%%" % (100 * c["accuracy"])
        print("%-*s  %8d  %8d  %8s" % (width, c["class"], c["examples"], c["correct"], acc))
    if a.confusion:
        print("\nconfusion matrix (rows: true class, columns: predicted class)")
        col = max(5, len(str(confusion.max())) + 1, max(len(n) for n in names) + 1)
        short = [n[:col - 1] for n in names]
        print(" " * width + "".join("%*s" % (col, n) for n in short))
        for i in range(k):
            print("%-*s" % (width, names[i]) + "".join("%*d" % (col, v) for v in confusion[i]))
    return 0


# ---- predict -------------------------------------------------------------------------------------

def _model_data(m):
    """The model's info["data"] if it is the dict pynet writes, else {} (a hand-edited info)."""
    data = m.info.get("data") if isinstance(m.info, dict) else None
    return data if isinstance(data, dict) else {}


def _model_image_shape(m, model_path):
    shape = _model_data(m).get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(type(v) is int and v >= 1 for v in shape)
            and shape[2] in _CHANNELS and shape[0] * shape[1] * shape[2] == m.layers[0].inputs):
        shape = _image_shape(m.layers[0].inputs, None)   # what pynet writes is not there: guess from the size
    if shape is None or len(shape) != 3 or shape[0] * shape[1] * shape[2] != m.layers[0].inputs:
        raise CLIError("%s takes %d inputs, which is not a square greyscale or RGB image, and it does not say "
                       "what images it was trained on" % (model_path, m.layers[0].inputs))
    return tuple(int(s) for s in shape)


_CHANNELS = {1: "greyscale", 2: "greyscale with alpha", 3: "RGB", 4: "RGB with alpha"}


def _read_image(path, shape):
    from .datasets._common import pixels_to_X
    from .datasets._decode import decode
    if not os.path.exists(path):
        raise CLIError("image not found: %s" % path)
    if os.path.isdir(path):
        raise CLIError("%s is a folder, not an image" % path)
    try:
        pixels, got = decode(path)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:   # Pillow signals unreadable files with many exception types
        if type(e).__name__ == "UnidentifiedImageError":
            raise CLIError("cannot read the image %s: not an image file Pillow recognises (wrong type, or "
                           "damaged)" % path) from None
        raise CLIError("cannot read the image %s: %s" % (path, e)) from None
    h, w, c = shape
    if tuple(got) != (h, w, c):
        problem = []
        if got[:2] != (h, w):
            problem.append("is %dx%d pixels (width x height) but the model takes %dx%d images" % (got[1], got[0], w, h))
        if got[2] != c:
            problem.append("has %d channel%s (%s) but the model takes %s images"
                           % (got[2], "" if got[2] == 1 else "s", _CHANNELS.get(got[2], "?"), _CHANNELS[c]))
        raise CLIError("%s %s" % (path, " and ".join(problem)))
    return pixels_to_X(np.frombuffer(pixels, dtype=np.uint8).reshape(1, -1), False, (h, w, c))


def _probability(p):
    """Four decimals, or two significant digits for the tiny probabilities of unlikely classes."""
    return "%.4f" % p if p >= 1e-4 else "%.1e" % p


def cmd_predict(a):
    import pynet
    m = pynet.load_model(a.model)
    shape = _model_image_shape(m, a.model)
    X = np.concatenate([_read_image(path, shape) for path in a.images])
    if m.standardizer is not None:
        m.standardizer.apply(X)
    p = pynet.predict_model(m, X).data
    names = list(m.labels or [str(i) for i in range(p.shape[1])])
    top = min(a.top, p.shape[1])
    for path, row in zip(a.images, p):
        best = np.argsort(-row, kind="stable")[:top]
        if a.json:
            print(json.dumps({"image": path, "predictions": [{"class": names[i], "probability": float(row[i])}
                                                              for i in best]}))
        else:
            print("%s: %s" % (path, ", ".join("%s (%s)" % (names[i], _probability(row[i])) for i in best)))
    return 0


# ---- entry point ---------------------------------------------------------------------------------

COMMANDS = {"train": cmd_train, "eval": cmd_eval, "predict": cmd_predict,
            "homework": lambda args: __import__("pynet.homework", fromlist=["run"]).run(args)}


def main(argv=None):
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if os.environ.get("PYNET_DEBUG"):   # developers: full tracebacks
        return COMMANDS[args.command](args)
    from ._native import DivergedError
    from .io import ModelFileError
    try:
        return COMMANDS[args.command](args)
    except CLIError as e:
        _err(str(e))
    except DivergedError as e:
        _err("%s Try a lower --rate or --clip." % e)
    except (ModelFileError, FileNotFoundError, PermissionError, IsADirectoryError) as e:
        _err(str(e))
    except (ValueError, OSError) as e:   # dataset files (DataFileError), bad settings caught by the library
        _err(str(e))
    except MemoryError:
        _err("out of memory; try a smaller model, --batch or --subset")
    except KeyboardInterrupt:
        _err("interrupted")
        return 130
    return 1
