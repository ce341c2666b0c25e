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

The package: ``parser`` (options), ``common`` (what the commands share), ``train``, ``use`` (eval and
predict); this module is the entry point and the mapping from errors to one-line messages.
"""
import os
import sys

from .common import CLIError, CLIUsageError, _err
from .parser import HIDDEN_ACTIVATIONS, build_parser  # noqa: F401  HIDDEN_ACTIVATIONS: the --activation choices
from .train import cmd_train
from .use import cmd_eval, cmd_predict

__all__ = ["main", "build_parser"]


COMMANDS = {"train": cmd_train, "eval": cmd_eval, "predict": cmd_predict,
            "homework": lambda args: __import__("pynet.homework", fromlist=["run"]).run(args)}


def main(argv=None):
    """Run the command line; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    if os.environ.get("PYNET_DEBUG"):   # developers: full tracebacks
        return COMMANDS[args.command](args)
    from .._native import DivergedError
    from ..io import ModelFileError
    try:
        return COMMANDS[args.command](args)
    except CLIUsageError as e:
        _err(str(e))
        return 2
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
