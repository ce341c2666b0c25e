"""Writing MNIST or CIFAR-10 out in the homework's layout, from the standard files:
``DIR/train/<index>_<label>.png``, ``DIR/test/...``, the lists ``DIR/<name>.train`` and
``DIR/<name>.test`` (paths relative to DIR, one per line, in the standard files' order) and the
labels file ``DIR/<name>.labels``. Loading those lists with load_image_classification_data gives
exactly the X and y of load_mnist / load_cifar10.

Nothing already in DIR is overwritten: each split's folder is written under a temporary name and
renamed when complete, and the text files are written atomically.
"""
import os
import secrets
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np

from .._progress import Progress, progress_enabled
from . import _cifar10, _mnist
from ._common import SPLITS, atomic_file

_PNG_COLOR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}   # channels -> grey, grey+alpha, RGB, RGBA


def png_bytes(image):
    """A PNG file holding ``image``, a (height, width, channels) uint8 array: 8 bits per sample,
    no filtering, zlib level 6. Small, lossless, and readable by any PNG decoder."""
    h, w, c = image.shape
    rows = np.zeros((h, 1 + w * c), dtype=np.uint8)   # each row starts with filter type 0 (none)
    rows[:, 1:] = image.reshape(h, w * c)

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", w, h, 8, _PNG_COLOR_TYPE[c], 0, 0, 0)
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(rows.tobytes(), 6))
            + chunk(b"IEND", b""))


def source_images(name, split, folder):
    """(images as uint8 (n, height, width, channels), class index per image, class names) for
    ``split`` of dataset ``name`` read from the standard files in ``folder``."""
    if name == "mnist":
        images, labels, (h, w, c) = _mnist.read(split, folder)
        return images.reshape(-1, h, w, c), labels, _mnist.CLASS_NAMES
    records, names = _cifar10.read(split, folder)
    planar = records[:, 1:].reshape(-1, 3, 32, 32)
    return planar.transpose(0, 2, 3, 1), records[:, 0], names


def export_png(name, out_dir, folder, splits=SPLITS, limit=None, progress=None):
    """Write ``splits`` of dataset ``name`` (from the standard files in ``folder``) into ``out_dir``
    in the homework's layout; only the first ``limit`` images of each split if given. Returns the
    paths written (the list files and the labels file)."""
    out = Path(out_dir).expanduser()
    if out.exists() and not out.is_dir():
        raise NotADirectoryError("cannot export into %s: it is a file, not a folder" % out)
    labels_file = out / ("%s.labels" % name)
    for split in splits:
        tree, listing = out / split, out / ("%s.%s" % (name, split))
        if tree.is_dir() and any(tree.iterdir()) or tree.exists() and not tree.is_dir():
            raise FileExistsError("%s already exists; export into an empty folder, or move it away first" % tree)
        if listing.exists():
            raise FileExistsError("%s already exists; export into an empty folder, or move it away first" % listing)
    written = []
    names = None
    for split in splits:
        images, labels, names = source_images(name, split, folder)
        n = len(images) if limit is None else min(len(images), int(limit))
        files = ["%d_%s.png" % (i, names[labels[i]]) for i in range(n)]
        staging = out / (".%s.%s.part" % (split, secrets.token_hex(4)))
        staging.mkdir(parents=True)
        try:
            bar = Progress(n, "export %s" % split, unit="img", enabled=progress_enabled(progress))
            for i, file in enumerate(files):
                with open(staging / file, "wb") as f:
                    f.write(png_bytes(images[i]))
                if i % 500 == 499:
                    bar.update(i + 1)
            bar.update(n)
            bar.close()
            tree = out / split
            if tree.is_dir():
                tree.rmdir()   # empty, checked above
            os.rename(staging, tree)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        listing = out / ("%s.%s" % (name, split))
        with atomic_file(listing) as f:
            f.write("".join("%s/%s\n" % (split, file) for file in files).encode("utf-8"))
        written.append(listing)
    text = "".join(n + "\n" for n in names).encode("utf-8")
    if not (labels_file.is_file() and labels_file.read_bytes() == text):
        if labels_file.exists():
            raise FileExistsError("%s already exists with other class names; it was left untouched" % labels_file)
        with atomic_file(labels_file) as f:
            f.write(text)
    written.append(labels_file)
    return written
