"""CIFAR-10 in its standard binary format ("CIFAR-10 binary version"): data_batch_1.bin …
data_batch_5.bin (training), test_batch.bin (test) and batches.meta.txt (the class names), each
gzipped or not.

A batch file is a run of 3,073-byte records: one label byte, then the 32×32 image as 1,024 red,
1,024 green and 1,024 blue bytes, each plane row-major. That channel-planar order is also the
homework's image layout, so a record's pixels are an X row as they are.
"""
from pathlib import Path

import numpy as np

from ..data import make_data
from ._common import (DataFileError, check_split, content_size, expect_end, find_file, find_root,
                      not_found_anywhere, open_data, pixels_to_X, read_exact, read_label_names)

NAME, TITLE = "cifar10", "CIFAR-10"
FILES = {"train": ["data_batch_%d.bin" % i for i in range(1, 6)], "test": ["test_batch.bin"]}
META = "batches.meta.txt"
SHAPE = (32, 32, 3)
RECORD = 1 + 32 * 32 * 3


def missing(folder, split):
    """The standard files of ``split`` that ``folder`` lacks, as names to show a user."""
    return [name + "[.gz]" for name in FILES[split] + [META] if find_file(folder, name) is None]


def read(split, folder):
    """The raw ``split`` of the CIFAR-10 files in ``folder``: (records as uint8 (n, 3073), the class
    names). Sizes are checked before the one array for all records is allocated."""
    paths = []
    for name in FILES[check_split(split)] + [META]:
        path = find_file(folder, name)
        if path is None:
            raise FileNotFoundError("CIFAR-10 file not found: %s[.gz]" % (Path(folder) / name))
        paths.append(path)
    meta = paths.pop()
    names = read_label_names(meta, "class-name file")
    counts = []
    for path in paths:
        size = content_size(path)
        if size == 0 or size % RECORD:
            raise DataFileError(path, "truncated or corrupt: %d bytes is not a whole number of %d-byte records "
                                      "(1 label byte + 3,072 pixel bytes)" % (size, RECORD))
        counts.append(size // RECORD)
    records = np.empty((sum(counts), RECORD), dtype=np.uint8)
    start = 0
    for path, count in zip(paths, counts):
        with open_data(path) as f:
            read_exact(f, records[start:start + count], path, "%d records" % count)
            expect_end(f, path, count * RECORD)
        labels = records[start:start + count, 0]
        if labels.max() >= len(names):
            bad = int(np.argmax(labels >= len(names)))
            raise DataFileError(path, "record %d has label %d but %s names only %d classes"
                                % (bad, labels[bad], meta, len(names)))
        start += count
    return records, names


def load_cifar10(split, root=None, bias=False):
    """CIFAR-10's ``split`` ("train": 50,000 images, "test": 10,000) from the standard binary files,
    as a Data: X is n × 3072 doubles in [0, 1], channel-planar (1,024 red, then green, then blue;
    plus a column of ones if ``bias``), y one-hot over the class names of batches.meta.txt
    (``.labels``: airplane, automobile, …, truck).

    ``root`` is the folder holding the files (or its parent, holding ``cifar10/``); by default
    $PYNET_DATA/cifar10, then ~/.cache/pynet/cifar10."""
    folder = find_root(NAME, check_split(split), root, missing, TITLE)
    if folder is None:
        raise not_found_anywhere(NAME, split, missing, TITLE, "; there is no bundled sample of CIFAR-10")
    records, names = read(split, folder)
    X = pixels_to_X(records[:, 1:], bias)
    labels = records[:, 0].astype(np.intp)
    del records
    return make_data(X, labels, classes=len(names), labels=names)
