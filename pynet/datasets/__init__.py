"""pynet.datasets — MNIST and CIFAR-10 from the homework's PNG lists or their standard files.

Three ways in, all giving the same ``pynet.Data`` for the same images (X: one image per row,
pixels / 255, channel-planar; y: one-hot; ``.labels``: the class names):

- ``load_image_classification_data(images, labels)``: the homework's list of PNG paths and labels file;
- ``load_mnist(split)`` / ``load_cifar10(split)``: the standard distribution files (gzipped or not);
- ``load(name, split)``: the entry point for scripts; finds the data (``root``, else
  $PYNET_DATA/<name>, else ~/.cache/pynet/<name>) and, for MNIST, falls back to a small sample
  bundled with pynet when there is none.

``python -m pynet.datasets download mnist|cifar10`` fetches the standard files, ``export-png``
writes the homework's PNG layout from them; ``python -m pynet.datasets --help`` lists the rest.
See docs/DATASETS.md.
"""
import sys
from pathlib import Path

from ._cifar10 import load_cifar10
from ._common import (SPLITS, ChecksumError, DataFileError, DownloadError, cache_dir, check_split, default_roots,
                      find_root, not_found_anywhere)
from ._image_file import CHANNELS, image_shape, read_image
from ._images import clear_cache, load_image_classification_data, load_image_folder
from ._images import class_folders as _class_folders
from ._mnist import load_mnist
from ._registry import FORMATS, IMAGE_SHAPES, LOADERS, NAMES, TITLES, dataset_key  # noqa: F401
from ._sample import SAMPLE_DIR
from . import _cifar10, _export, _mnist

__all__ = ["load", "load_mnist", "load_cifar10", "load_image_classification_data", "load_image_folder", "download",
           "export_png", "locate", "clear_cache", "cache_dir", "DataFileError", "DownloadError", "ChecksumError",
           "NAMES", "TITLES", "SAMPLE_DIR", "read_image", "image_shape", "IMAGE_SHAPES", "CHANNELS"]

_FORMATS, _LOADERS = FORMATS, LOADERS
_sample_notice_shown = False


def _dataset(name):
    key = dataset_key(name)
    if key is None:
        raise ValueError("unknown dataset %r: expected %s" % (name, " or ".join(repr(n) for n in NAMES)))
    return key


def locate(name, split="train", root=None):
    """Where ``load(name, split, root)`` reads from: (folder, is_sample). Raises FileNotFoundError,
    saying what is expected and how to get it, when there is nothing to read."""
    name, split = _dataset(name), check_split(split)
    fmt = _FORMATS[name]
    folder = find_root(name, split, root, fmt.missing, fmt.TITLE)
    if folder is not None:
        return folder, False
    if name == "mnist":
        return SAMPLE_DIR, True
    raise not_found_anywhere(name, split, fmt.missing, fmt.TITLE, "; there is no bundled sample of CIFAR-10")


def load(name, split, root=None, bias=False):
    """Dataset ``name`` ("mnist" or "cifar10"), split ``split`` ("train" or "test"), as a Data.

    The files are read from ``root`` if given (the folder holding them, or its parent holding
    ``<name>/``); else from $PYNET_DATA/<name>; else from ~/.cache/pynet/<name> (or
    $PYNET_CACHE/<name>). When none holds MNIST, the sample bundled with pynet is used (5,000
    training and 1,000 test digits) and a one-line notice on stderr says so, once per process.
    With ``bias``, X gets a last column of ones.

    ``name`` may also be a folder: one holding MNIST's or CIFAR-10's standard files, the
    homework's lists (``<x>.train`` / ``<x>.test`` next to ``<x>.labels``, as export-png writes), or
    class folders (torchvision's ImageFolder layout, read by ``load_image_folder``): either
    ``<folder>/<split>/<class>/*.png``, or ``<folder>/<class>/*.png`` for the train split alone."""
    if not _looks_like_path(name):
        folder, is_sample = locate(name, split, root)
        if is_sample:
            _notice_sample()
        return _LOADERS[_dataset(name)](split, root=folder, bias=bias)
    if root is not None:
        raise ValueError("load(%r, ...): name is a folder, so root must not be given as well" % (name,))
    folder = Path(name).expanduser()
    split = check_split(split)
    if folder.is_file():
        raise NotADirectoryError("%s is a file, not a dataset folder; to load an image list, call "
                                 "load_image_classification_data(list_file, labels_file)" % folder)
    if not folder.is_dir():
        raise FileNotFoundError("dataset folder not found: %s" % folder)
    for key, fmt in _FORMATS.items():
        if not fmt.missing(folder, split):
            return _LOADERS[key](split, root=folder, bias=bias)
    lists = sorted(p for p in folder.glob("*." + split) if p.is_file() and p.with_suffix(".labels").is_file())
    if len(lists) == 1:
        return load_image_classification_data(lists[0], lists[0].with_suffix(".labels"), bias=bias)
    if len(lists) > 1:
        raise ValueError("%s holds several image lists for %s (%s); load the one you mean with "
                         "load_image_classification_data" % (folder, split, ", ".join(p.name for p in lists)))
    if (folder / split).is_dir() and _class_folders(folder / split):
        return load_image_folder(folder / split, bias=bias)
    if _class_folders(folder) and not any((folder / s).is_dir() for s in SPLITS):
        if split == "train":
            return load_image_folder(folder, bias=bias)
        raise FileNotFoundError("%s holds class folders (%s) but no %s split: for one, lay the images out as "
                                "%s/train/<class>/ and %s/%s/<class>/" % (folder, ", ".join(_class_folders(folder)[:5]),
                                                                          split, folder, folder, split))
    raise FileNotFoundError(
        "%s holds no %s data: expected MNIST's %s, CIFAR-10's %s, or a homework list <x>.%s next to <x>.labels "
        "(as python -m pynet.datasets export-png writes), or class folders <class>/*.png" % (
            folder, split, " and ".join(_mnist.missing(Path("/nonexistent"), split)),
            ", ".join(_cifar10.missing(Path("/nonexistent"), split)), split))


def _looks_like_path(name):
    if isinstance(name, Path):
        return True
    text = str(name)
    try:
        _dataset(text)
        return False
    except ValueError:
        pass
    if "/" in text or "\\" in text or text.startswith((".", "~")) or Path(text).exists():
        return True
    raise ValueError("unknown dataset %r: expected 'mnist', 'cifar10' or a folder holding a dataset" % (name,))


def _notice_sample():
    global _sample_notice_shown
    if not _sample_notice_shown:
        _sample_notice_shown = True
        looked = ", ".join(str(r) for r in default_roots("mnist"))
        sys.stderr.write("pynet: full MNIST not found (looked in %s); using the bundled sample, a real class-"
                         "balanced subset of 5,000 training and 1,000 test digits. For all 70,000: "
                         "python -m pynet.datasets download mnist, or set PYNET_DATA to a folder holding "
                         "mnist/\n" % looked)
        sys.stderr.flush()


def download(name, root=None, *, mirror=None, progress=None):
    """Fetch dataset ``name`` ("mnist" or "cifar10") from its canonical source (or ``mirror``, a
    base URL) into ``root`` (default: $PYNET_DATA/<name>, else ~/.cache/pynet/<name>), verifying
    checksums. Returns (root, report): report lists (file, what happened) for each file.
    Raises DownloadError when offline or no source answers, ChecksumError on a mismatch."""
    from . import _download   # urllib, ssl and tarfile load only when needed
    return _download.download(_dataset(name), root, mirror=mirror, progress=progress)


def export_png(name, out_dir, *, root=None, splits=SPLITS, limit=None, progress=None):
    """Write dataset ``name`` in the homework's layout under ``out_dir``: ``train/<index>_<label>.png``,
    ``test/...``, the lists ``<name>.train`` and ``<name>.test`` and the labels file ``<name>.labels``.
    The images come from the standard files, found as ``load`` finds them (for MNIST, the bundled
    sample if there is no full set). ``limit`` exports only the first images of each split.
    Existing files are never overwritten. Returns the list and labels files written."""
    name = _dataset(name)
    splits = [check_split(s) for s in ([splits] if isinstance(splits, str) else splits)]
    folders = []
    for split in splits:
        folder, is_sample = locate(name, split, root)
        if is_sample:
            _notice_sample()
        folders.append(folder)
    if len(set(folders)) > 1:
        raise ValueError("the train and test files of %s are in different folders (%s); export one split at a "
                         "time" % (name, ", ".join(map(str, folders))))
    return _export.export_png(name, out_dir, folders[0], splits, limit, progress)
