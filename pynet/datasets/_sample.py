"""The small MNIST sample bundled with pynet, for a first run with no data and no network, and the
recipe that regenerates it from the full set (``python -m pynet.datasets make-sample``).

The sample is the first 500 training and the first 100 test images of each digit, in file order,
as standard IDX files (gzipped with a fixed header, so the same input gives the same bytes), plus
SAMPLE.json recording which images were taken and checksums of the source. The same loader reads
it as reads the full set.
"""
import gzip
import hashlib
import json
import struct
from pathlib import Path

import numpy as np

from . import _mnist
from ._common import atomic_file

SAMPLE_DIR = Path(__file__).resolve().with_name("sample")
PER_CLASS = {"train": 500, "test": 100}


def _idx_bytes(values):
    return struct.pack(">BBBB", 0, 0, 0x08, values.ndim) + struct.pack(">%dI" % values.ndim, *values.shape) \
        + values.tobytes()


def _write_gz(path, data):
    with atomic_file(path) as f:
        # No file name and mtime 0 in the gzip header: the output depends on the content only.
        with gzip.GzipFile(filename="", mode="wb", fileobj=f, compresslevel=9, mtime=0) as g:
            g.write(data)


def make_sample(folder, out_dir=SAMPLE_DIR, per_class=PER_CLASS):
    """Write the sample of the full MNIST in ``folder`` into ``out_dir``; returns the files written."""
    out = Path(out_dir)
    record = {"source": "MNIST (Y. LeCun, C. Cortes, C. J. C. Burges), CC BY-SA 3.0",
              "selection": "the first %d training and %d test images of each digit, in file order"
                           % (per_class["train"], per_class["test"]),
              "splits": {}}
    written = []
    for split in ("train", "test"):
        images, labels, (rows, cols, _) = _mnist.read(split, folder)
        if len(labels) < 10 * per_class[split] * 2:
            raise ValueError("%s holds only %d %s images: make the sample from the full MNIST, not from a sample"
                             % (folder, len(labels), split))
        picks = np.sort(np.concatenate([np.flatnonzero(labels == d)[:per_class[split]] for d in range(10)]))
        image_stem, label_stem = _mnist.FILES[split]
        source_images = _idx_bytes(images.reshape(-1, rows, cols))
        source_labels = _idx_bytes(labels)
        for stem, data in ((image_stem, _idx_bytes(images[picks].reshape(-1, rows, cols))),
                           (label_stem, _idx_bytes(labels[picks]))):
            _write_gz(out / (stem + ".gz"), data)
            written.append(out / (stem + ".gz"))
        record["splits"][split] = {
            "count": int(len(picks)),
            "source_sha256": {image_stem: hashlib.sha256(source_images).hexdigest(),
                              label_stem: hashlib.sha256(source_labels).hexdigest()},
            "indices": picks.tolist(),
        }
    with atomic_file(out / "SAMPLE.json") as f:
        f.write(json.dumps(record, separators=(",", ":")).encode("utf-8") + b"\n")
    written.append(out / "SAMPLE.json")
    return written
