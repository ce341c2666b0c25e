"""The command line's parser: argument types and every command's options."""
import argparse
import math
import textwrap

from ..activations import HIDDEN_ACTIVATIONS as _HIDDEN

__all__ = ["build_parser", "HIDDEN_ACTIVATIONS", "layer_sizes"]

HIDDEN_ACTIVATIONS = tuple(a.name.lower() for a in _HIDDEN)   # from the C core's table


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


integer = _type(int, lambda v: True, "an integer")
number = _type(float, lambda v: True, "a number")

# Options whose command-line default or help differs from fit's (the rest come from pynet.config).
CLI_DEFAULTS = {"rate": (None, "peak learning rate (default: 0.05 for sgd, 0.001 for adam)")}


def add_training_options(group):
    """One --option per training option of pynet.config (fit's keywords), in its order, with its
    default and help: a new option in pynet.config is on the command line with no edit here.
    The values are only parsed here; their ranges are the C core's one check (pn_check_config),
    run before any data is read (cli.train)."""
    from ..config import OPTIONS, defaults
    values = defaults()
    for o in OPTIONS:
        if not o.public:
            continue
        default, text = CLI_DEFAULTS.get(o.name, (values[o.name], o.help))
        flag = "--" + o.name.replace("_", "-")
        if isinstance(o.kind, dict):
            group.add_argument(flag, choices=tuple(o.kind), default=default, help=text)
        else:
            group.add_argument(flag, type=integer if o.kind is int else number, default=default, metavar=o.metavar,
                               help=text)


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
    add_training_options(g)
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
    from ..homework import register as register_homework   # the homework's own commands
    register_homework(sub)
    return p
