"""The datasets pynet knows by name, in one place: each name's format module (its files, title,
image shape and loader). ``load``, ``locate``, ``download``, the image-shape helper, the report and
the command line all read their names from here; a new named dataset is one entry here plus its
format module."""
from . import _cifar10, _mnist

FORMATS = {"mnist": _mnist, "cifar10": _cifar10}
LOADERS = {"mnist": _mnist.load_mnist, "cifar10": _cifar10.load_cifar10}
NAMES = tuple(FORMATS)
TITLES = {name: fmt.TITLE for name, fmt in FORMATS.items()}            # "MNIST", "CIFAR-10"
IMAGE_SHAPES = {name: fmt.SHAPE for name, fmt in FORMATS.items()}      # (height, width, channels) of a row


def dataset_key(name):
    """The registry key for a dataset name in any spelling load accepts ("MNIST", "cifar-10"), or
    None for a name that is not a known dataset (a folder, say)."""
    key = str(name).lower().replace("-", "").replace("_", "")
    return key if key in FORMATS else None
