"""What the commands share: the one-line user error (CLIError), messages on stderr, data by name
or folder, and the pre-flight checks that fail before any training."""
import os
import sys

from .._progress import format_seconds as _seconds  # noqa: F401 (the commands take it from here)
from ..datasets import dataset_key


class CLIError(Exception):
    """A problem with the user's input, reported as one line (no traceback); exit status 1."""


class CLIUsageError(CLIError):
    """A malformed command line found after parsing (an option's value out of range): exit status 2,
    as argparse's own errors."""

def _err(message):
    sys.stderr.write("pynet: error: %s\n" % message)
    sys.stderr.flush()


def _info(message, quiet=False):
    if not quiet:
        sys.stderr.write(message + "\n")
        sys.stderr.flush()

def _dataset_name(data):
    """'mnist' / 'cifar10' for the known datasets (any spelling load accepts), else None (a folder)."""
    return dataset_key(data)


def _load_data(data, split, root, subset):
    from .. import datasets
    name = _dataset_name(data)
    if name is None and not (os.sep in str(data) or str(data).startswith((".", "~")) or os.path.exists(str(data))):
        raise CLIError("unknown dataset %r: use mnist, cifar10, or a folder holding a dataset" % data)
    if name is None and root is not None:
        raise CLIError("--root is for the named datasets (mnist, cifar10); %r is already a folder" % data)
    d = datasets.load(name or data, split, root=root)
    if subset is not None and subset < len(d):
        d = d.head(subset)
    return d, name


def _data_source(data, name, root):
    """Where the data was read from, for the log: the folder, or the bundled sample."""
    if name is None:
        return os.path.abspath(str(data))
    from .. import datasets
    folder, is_sample = datasets.locate(name, "train", root)
    return "pynet's bundled sample (the full data set was not found)" if is_sample else str(folder)

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
