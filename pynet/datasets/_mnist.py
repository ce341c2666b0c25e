"""MNIST in its standard distribution format: four IDX files (train-images-idx3-ubyte,
train-labels-idx1-ubyte, t10k-images-idx3-ubyte, t10k-labels-idx1-ubyte), each gzipped or not.

An IDX file is a 4-byte magic number (two zero bytes, a type code — 0x08 for unsigned bytes — and the
number of dimensions), the dimensions as big-endian uint32, then the values in row-major order.
Images are 28×28 grey, one byte per pixel; labels are the digits 0–9. The class names are the
homework's (``num0`` … ``num9``, its ``mnist.labels``), so this loader and the PNG-list loader agree.
"""
import math
import os
import struct
from pathlib import Path

import numpy as np

from ..data import make_data
from ._common import find_file as _find_file
from ._common import (GZIP_MAGIC, DataFileError, check_split, content_size, expect_end, find_root, not_found_anywhere,
                      open_data, pixels_to_X, read_exact)

NAME, TITLE = "mnist", "MNIST"
SHAPE = (28, 28, 1)
CLASS_NAMES = ["num%d" % d for d in range(10)]
FILES = {"train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
         "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")}


def find_file(folder, stem):
    """The file for ``stem`` in ``folder``; the spelling with a dot (train-images.idx3-ubyte, as some
    copies have it) is accepted too."""
    return _find_file(folder, stem, stem.replace("-idx", ".idx"))


def missing(folder, split):
    """The standard files of ``split`` that ``folder`` lacks, as names to show a user."""
    return [stem + "[.gz]" for stem in FILES[split] if find_file(folder, stem) is None]


def read_idx(path, ndim, what):
    """The uint8 array in an IDX file of ``ndim`` dimensions (``what`` describes it in errors).
    The file's size is checked against its header before anything is allocated."""
    size = content_size(path)
    with open(path, "rb") as raw:
        gzipped = raw.read(2) == GZIP_MAGIC
    with open_data(path) as f:
        head = bytearray(4)
        read_exact(f, head, path, "the IDX header")
        if head[0] or head[1] or head[2] != 0x08 or head[3] != ndim:
            magic = struct.unpack(">I", head)[0]
            raise DataFileError(path, "not an IDX file of %s: its magic number is %d (0x%08x), expected %d"
                                % (what, magic, magic, 0x0800 + ndim))
        raw_dims = bytearray(4 * ndim)
        read_exact(f, raw_dims, path, "the IDX header")
        dims = struct.unpack(">%dI" % ndim, raw_dims)
        expected = 4 + 4 * ndim + math.prod(dims)   # Python ints: no wrap-around
        if gzipped:   # the gzip trailer keeps the size modulo 2**32; deflate gives at most ~1032:1
            fits = expected % 2**32 == size % 2**32 and expected <= 1100 * os.path.getsize(path)
        else:
            fits = expected == size
        if not fits:
            raise DataFileError(path, "truncated or corrupt: its header announces %s %s (%d bytes) but "
                                      "the file holds %d bytes" % ("x".join(map(str, dims)), what, expected, size))
        try:
            values = np.empty(dims, dtype=np.uint8)
        except (ValueError, MemoryError):   # e.g. (0, 2**32-1, 2**32-1): no bytes, but numpy refuses the shape
            raise DataFileError(path, "corrupt: its header announces %s %s, a shape no array can have"
                                % ("x".join(map(str, dims)), what)) from None
        if values.size:
            read_exact(f, values, path, "%s %s" % ("x".join(map(str, dims)), what))
        expect_end(f, path, expected)
    return values


def read(split, folder):
    """The raw ``split`` of the MNIST files in ``folder``: (images as uint8 (n, rows·cols), labels
    as uint8 (n,), (rows, cols, 1))."""
    image_stem, label_stem = FILES[check_split(split)]
    image_path, label_path = find_file(folder, image_stem), find_file(folder, label_stem)
    for stem, path in ((image_stem, image_path), (label_stem, label_path)):
        if path is None:
            raise FileNotFoundError("MNIST file not found: %s[.gz]" % (Path(folder) / stem))
    images = read_idx(image_path, 3, "images")
    labels = read_idx(label_path, 1, "labels")
    n, rows, cols = images.shape
    if labels.shape[0] != n:
        raise DataFileError(label_path, "holds %d labels but %s holds %d images" % (labels.shape[0], image_path, n))
    if n and labels.max() > 9:
        bad = int(np.argmax(labels > 9))
        raise DataFileError(label_path, "label %d of item %d is not a digit 0-9" % (labels[bad], bad))
    return images.reshape(n, rows * cols), labels, (rows, cols, 1)


def load_mnist(split, root=None, bias=False):
    """MNIST's ``split`` ("train": 60,000 digits, "test": 10,000) from the standard IDX files, as a
    Data: X is n × 784 doubles in [0, 1] (plus a column of ones if ``bias``), y one-hot over the
    classes ``num0`` … ``num9`` (``.labels``).

    ``root`` is the folder holding the files (or its parent, holding ``mnist/``); by default
    $PYNET_DATA/mnist, then ~/.cache/pynet/mnist. Unlike ``pynet.datasets.load("mnist", ...)``
    this never falls back to the bundled sample."""
    folder = find_root(NAME, check_split(split), root, missing, TITLE)
    if folder is None:
        raise not_found_anywhere(NAME, split, missing, TITLE,
                                 "; pynet.datasets.load('mnist', ...) falls back to a small bundled sample")
    images, labels, _ = read(split, folder)
    X = pixels_to_X(images, bias)
    del images   # the uint8 copy can go before the one-hot labels are built
    return make_data(X, labels.astype(np.intp), classes=10, labels=CLASS_NAMES)
