"""Tests for pynet.datasets: the homework's PNG lists, MNIST's IDX files, CIFAR-10's binary files,
downloads, PNG export, the image cache and the bundled MNIST sample.

Expected values come from outside the code under test: the per-class counts published for MNIST
and CIFAR-10 (and in ../shared/data/README.md), the published MD5s, pixels decoded here with plain
gzip + numpy or written here with Pillow, and the round trip standard files → export-png → PNG
loader. No test touches the internet (downloads are served by a local http.server) and none is
timed; speed figures live in benchmarks/bench_datasets.py and docs/DATASETS.md.
"""
import gzip
import hashlib
import http.server
import io
import json
import os
import re
import shutil
import socket
import struct
import subprocess
import sys
import tarfile
import threading
import tracemalloc
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import pynet
import pynet.datasets as D
from pynet.datasets import _download, _images

REPO = Path(__file__).resolve().parents[1]

MNIST_TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949]
MNIST_TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
MNIST_MD5 = {"train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
             "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
             "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c"}
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    """Every test gets its own cache folder, so nothing lands in the user's ~/.cache."""
    monkeypatch.setenv("PYNET_CACHE", str(tmp_path_factory.mktemp("cache")))


def counts(d):
    return np.bincount(d.classes, minlength=d.y.cols).tolist()


def raw_idx(path):
    """An IDX file's values, parsed here independently of pynet."""
    data = gzip.decompress(Path(path).read_bytes())
    ndim = data[3]
    dims = struct.unpack(">%dI" % ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


def write_png(path, pixels, mode=None):
    """Write an image with Pillow (not pynet's own PNG writer)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(pixels, dtype=np.uint8), mode).save(path)


def write_list(path, entries):
    path.write_text("".join(str(e) + "\n" for e in entries))
    return path


def write_labels(path, names):
    path.write_text("".join(n + "\n" for n in names))
    return path


def python_env(**extra):
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")])))
    env.update(extra)
    return env


def run_cli(*args, **env):
    return subprocess.run([sys.executable, "-m", "pynet.datasets", *map(str, args)], capture_output=True,
                          text=True, env=python_env(**env), timeout=300)


# ---- the standard files, on the real data -------------------------------------------------------------

def test_mnist_counts_and_pixels(mnist_root):
    train = D.load_mnist("train", root=mnist_root)
    test = D.load_mnist("test", root=mnist_root)
    assert counts(train) == MNIST_TRAIN_COUNTS
    assert counts(test) == MNIST_TEST_COUNTS
    assert train.X.shape == (60000, 784) and test.X.shape == (10000, 784)
    assert train.labels == ["num%d" % d for d in range(10)]   # the homework's mnist.labels
    assert train.classes[:10].tolist() == [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]   # published first labels
    assert np.array_equal(test.y.data.sum(axis=1), np.ones(10000))        # one-hot
    # Pixels: independently parsed bytes / 255.
    raw = raw_idx(mnist_root / "t10k-images-idx3-ubyte.gz").reshape(10000, 784)
    assert np.array_equal(test.X.data, raw / 255.0)
    assert test.X.data.dtype == np.float64 and test.X.data.flags.c_contiguous


def test_mnist_bias_column(mnist_root):
    d = D.load_mnist("test", root=mnist_root, bias=True)
    plain = D.load_mnist("test", root=mnist_root)
    assert d.X.shape == (10000, 785)
    assert np.all(d.X.data[:, 784] == 1.0)
    assert np.array_equal(d.X.data[:, :784], plain.X.data)


def test_mnist_reads_uncompressed_files_too(mnist_root, tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(gzip.decompress((mnist_root / (name + ".gz")).read_bytes()))
    assert np.array_equal(D.load_mnist("test", root=tmp_path).X.data, D.load_mnist("test", root=mnist_root).X.data)


def test_cifar10_counts_names_and_layout(cifar10_root):
    test = D.load_cifar10("test", root=cifar10_root)
    assert test.labels == CIFAR_NAMES
    assert counts(test) == [1000] * 10
    assert test.classes[:20].tolist() == [i % 10 for i in range(20)]   # the README: test is round-robin
    # Pixels: the records' bytes, parsed here, are channel-planar already.
    records = np.frombuffer(gzip.decompress((cifar10_root / "test_batch.bin.gz").read_bytes()), np.uint8)
    records = records.reshape(10000, 3073)
    assert np.array_equal(test.X.data[:500], records[:500, 1:] / 255.0)
    assert np.array_equal(test.classes, records[:, 0])
    train = D.load_cifar10("train", root=cifar10_root, bias=True)
    assert train.X.shape == (50000, 3073) and np.all(train.X.data[:, -1] == 1.0)
    assert counts(train) == [5000] * 10


def test_load_finds_data_through_pynet_data(mnist_root, monkeypatch):
    monkeypatch.setenv("PYNET_DATA", str(mnist_root.parent))
    d = D.load("mnist", "test")
    assert counts(d) == MNIST_TEST_COUNTS
    assert pynet.load_image_classification_data is D.load_image_classification_data


# ---- export-png → PNG loader == standard loader ------------------------------------------------------

def test_export_png_round_trip_mnist(mnist_root, tmp_path):
    out = tmp_path / "mnist"
    written = D.export_png("mnist", out, root=mnist_root, limit=300)
    assert sorted(p.name for p in written) == ["mnist.labels", "mnist.test", "mnist.train"]
    assert (out / "mnist.labels").read_text().split() == ["num%d" % d for d in range(10)]
    assert (out / "mnist.train").read_text().splitlines()[0] == "train/0_num5.png"
    for split in ("train", "test"):
        png = D.load_image_classification_data(out / ("mnist.%s" % split), out / "mnist.labels")
        idx = D.load_mnist(split, root=mnist_root)
        assert np.array_equal(png.X.data, idx.X.data[:300])
        assert np.array_equal(png.y.data, idx.y.data[:300])
        assert png.labels == idx.labels


def test_export_png_round_trip_cifar10_from_the_cli(cifar10_root, tmp_path):
    out = tmp_path / "cifar"
    result = run_cli("export-png", "cifar10", out, "--root", cifar10_root, "--limit", 200, "--quiet")
    assert result.returncode == 0, result.stderr
    for split in ("train", "test"):
        png = D.load_image_classification_data(out / ("cifar10.%s" % split), out / "cifar10.labels")
        std = D.load_cifar10(split, root=cifar10_root)
        assert np.array_equal(png.X.data, std.X.data[:200])   # PNG (interleaved) → planar == the binary layout
        assert np.array_equal(png.y.data, std.y.data[:200])
        assert png.labels == CIFAR_NAMES


def test_parallel_decoding_matches_serial(mnist_root, tmp_path):
    n = _images.PARALLEL_MIN + 500   # long enough for worker processes
    D.export_png("mnist", tmp_path, root=mnist_root, splits="train", limit=n)
    lst, labels = tmp_path / "mnist.train", tmp_path / "mnist.labels"
    parallel = D.load_image_classification_data(lst, labels, cache=False, workers=2)
    serial = D.load_image_classification_data(lst, labels, cache=False, workers=1)
    idx = D.load_mnist("train", root=mnist_root)
    assert np.array_equal(parallel.X.data, idx.X.data[:n])
    assert np.array_equal(serial.X.data, idx.X.data[:n])
    assert np.array_equal(parallel.y.data, idx.y.data[:n])


def test_parallel_decoding_reports_the_first_bad_image(tmp_path):
    n = _images.PARALLEL_MIN + 100
    rng = np.random.default_rng(0)
    entries = []
    for i in range(n):
        path = tmp_path / "img" / ("%d_a.png" % i)
        write_png(path, rng.integers(0, 256, (4, 4)))
        entries.append(path)
    # Two bad files, one in each worker's share: the error must name the earlier one.
    entries[n - 10].write_bytes(b"not a png at all")
    write_png(entries[100], np.zeros((5, 4)))
    lst = write_list(tmp_path / "x.list", entries)
    labels = write_labels(tmp_path / "x.labels", ["a"])
    with pytest.raises(ValueError, match=r"line 101 .*%s" % entries[100].name):
        D.load_image_classification_data(lst, labels, workers=2)


# ---- the PNG-list format ----------------------------------------------------------------------------------

@pytest.fixture
def tiny(tmp_path):
    """Six 3x2 grey images of classes cat/dog in images/, a list and a labels file."""
    rng = np.random.default_rng(1)
    pixels, entries = [], []
    for i in range(6):
        p = rng.integers(0, 256, (3, 2))
        name = "images/%d_%s.png" % (i, "cat" if i % 2 else "dog")
        write_png(tmp_path / name, p)
        pixels.append(p.reshape(-1))
        entries.append(name)
    lst = write_list(tmp_path / "tiny.list", entries)
    labels = write_labels(tmp_path / "tiny.labels", ["dog", "cat"])
    return {"dir": tmp_path, "list": lst, "labels": labels, "entries": entries,
            "X": np.array(pixels) / 255.0, "classes": [i % 2 for i in range(6)]}


def test_png_list_values_labels_and_bias(tiny):
    d = D.load_image_classification_data(tiny["list"], tiny["labels"])
    assert np.array_equal(d.X.data, tiny["X"])
    assert d.classes.tolist() == tiny["classes"]
    assert d.labels == ["dog", "cat"]
    b = D.load_image_classification_data(str(tiny["list"]), str(tiny["labels"]), bias=True)
    assert b.X.shape == (6, 7) and np.all(b.X.data[:, 6] == 1.0)
    assert np.array_equal(b.X.data[:, :6], tiny["X"])


def test_relative_paths_resolve_against_the_list_folder_from_anywhere(tiny, tmp_path_factory, monkeypatch):
    monkeypatch.chdir(tmp_path_factory.mktemp("elsewhere"))
    d = D.load_image_classification_data(tiny["list"], tiny["labels"])
    assert np.array_equal(d.X.data, tiny["X"])


def test_relative_paths_prefer_the_current_directory(tiny, tmp_path_factory, monkeypatch):
    # The homework ran from its root with lists of paths relative to it: the current directory wins.
    here = tmp_path_factory.mktemp("here")
    for entry in tiny["entries"]:
        write_png(here / entry, np.full((3, 2), 7))
    monkeypatch.chdir(here)
    d = D.load_image_classification_data(tiny["list"], tiny["labels"])
    assert np.all(d.X.data == 7 / 255.0)


def test_rgb_and_other_pixel_formats_are_channel_planar(tmp_path):
    rng = np.random.default_rng(2)
    rgb = rng.integers(0, 256, (4, 5, 3))
    write_png(tmp_path / "0_a.png", rgb)
    write_png(tmp_path / "1_a.png", rgb)
    labels = write_labels(tmp_path / "l.txt", ["a"])
    d = D.load_image_classification_data(write_list(tmp_path / "rgb.list", ["0_a.png", "1_a.png"]), labels)
    planar = rgb.transpose(2, 0, 1).reshape(-1) / 255.0   # all R, then all G, then all B
    assert np.array_equal(d.X.data[0], planar)

    rgba = rng.integers(0, 256, (4, 5, 4))
    write_png(tmp_path / "2_a.png", rgba)
    d = D.load_image_classification_data(write_list(tmp_path / "rgba.list", ["2_a.png"]), labels)
    assert np.array_equal(d.X.data[0], rgba.transpose(2, 0, 1).reshape(-1) / 255.0)

    palette = rng.integers(0, 256, (16, 3)).astype(np.uint8)
    index = rng.integers(0, 16, (4, 5)).astype(np.uint8)
    im = Image.fromarray(index, "P")
    im.putpalette(palette.reshape(-1).tolist())
    im.save(tmp_path / "3_a.png")
    d = D.load_image_classification_data(write_list(tmp_path / "p.list", ["3_a.png"]), labels)
    assert np.array_equal(d.X.data[0], palette[index].transpose(2, 0, 1).reshape(-1) / 255.0)

    deep = rng.integers(0, 65536, (4, 5)).astype(np.uint16)
    Image.fromarray(deep).save(tmp_path / "4_a.png")   # 16-bit grey: the high byte is kept, as stb_image does
    d = D.load_image_classification_data(write_list(tmp_path / "16.list", ["4_a.png"]), labels)
    assert np.array_equal(d.X.data[0], (deep >> 8).reshape(-1) / 255.0)


def test_class_comes_from_the_file_name_only(tmp_path):
    write_png(tmp_path / "cat" / "1_dog.png", np.zeros((2, 2)))   # "cat" in the folder does not count
    d = D.load_image_classification_data(write_list(tmp_path / "l", ["cat/1_dog.png"]),
                                         write_labels(tmp_path / "labels", ["cat", "dog"]))
    assert d.classes.tolist() == [1]


def test_file_name_matching_no_label_or_two(tmp_path):
    labels = write_labels(tmp_path / "labels", ["cat", "dog"])
    write_png(tmp_path / "1_bird.png", np.zeros((2, 2)))
    write_png(tmp_path / "2_cat-dog.png", np.zeros((2, 2)))
    write_png(tmp_path / "3_catdog.png", np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"1_bird\.png.*contains none of.*cat, dog"):
        D.load_image_classification_data(write_list(tmp_path / "a", ["1_bird.png"]), labels)
    with pytest.raises(ValueError, match=r"2_cat-dog\.png.*more than one \(cat, dog\)"):
        D.load_image_classification_data(write_list(tmp_path / "b", ["2_cat-dog.png"]), labels)
    # labels are whole words of the name: "catdog" holds neither
    with pytest.raises(ValueError, match=r"3_catdog\.png.*contains none of"):
        D.load_image_classification_data(write_list(tmp_path / "c", ["3_catdog.png"]), labels)


def test_digit_labels_are_matched_exactly(tmp_path):
    # Labels that are digits are whole tokens, and the index in "<index>_<label>.png" is not one.
    write_png(tmp_path / "17_3.png", np.zeros((2, 2)))
    write_png(tmp_path / "3_3.png", np.zeros((2, 2)))
    labels = write_labels(tmp_path / "labels", [str(d) for d in range(10)])
    d = D.load_image_classification_data(write_list(tmp_path / "l", ["17_3.png", "3_3.png"]), labels)
    assert d.classes.tolist() == [3, 3]
    write_png(tmp_path / "1_2_3.png", np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"1_2_3\.png.*more than one \(2, 3\)"):
        D.load_image_classification_data(write_list(tmp_path / "m", ["1_2_3.png"]), labels)


def test_images_of_different_sizes(tiny):
    write_png(tiny["dir"] / "images" / "3_cat.png", np.zeros((4, 2)))
    with pytest.raises(ValueError, match=r"line 4 .*3_cat\.png is 2x4 with 1 channel.*0_dog\.png, is 2x3"):
        D.load_image_classification_data(tiny["list"], tiny["labels"])
    write_png(tiny["dir"] / "images" / "3_cat.png", np.zeros((3, 2, 3)))
    with pytest.raises(ValueError, match=r"3_cat\.png is 2x3 with 3 channels"):
        D.load_image_classification_data(tiny["list"], tiny["labels"])


def test_missing_list_labels_and_image_files(tiny):
    with pytest.raises(FileNotFoundError, match="image list not found: .*nope.list"):
        D.load_image_classification_data(tiny["dir"] / "nope.list", tiny["labels"])
    with pytest.raises(FileNotFoundError, match="labels file not found: .*nope.labels"):
        D.load_image_classification_data(tiny["list"], tiny["dir"] / "nope.labels")
    (tiny["dir"] / "images" / "4_dog.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"image not found: images/4_dog\.png \(line 5 of .*tiny\.list\)"):
        D.load_image_classification_data(tiny["list"], tiny["labels"])


def test_empty_list_and_bad_labels_files(tiny):
    d = tiny["dir"]
    with pytest.raises(ValueError, match="empty.list: the image list is empty"):
        D.load_image_classification_data(write_list(d / "empty.list", ["", "  "]), tiny["labels"])
    with pytest.raises(ValueError, match=r"dup.labels: class 'dog' appears twice .*lines 1 and 3"):
        D.load_image_classification_data(tiny["list"], write_labels(d / "dup.labels", ["dog", "cat", "dog"]))
    with pytest.raises(ValueError, match=r"blank.labels: line 2 of the labels file is blank"):
        D.load_image_classification_data(tiny["list"], write_labels(d / "blank.labels", ["dog", " ", "cat"]))
    with pytest.raises(ValueError, match=r"none.labels: labels file names no classes"):
        D.load_image_classification_data(tiny["list"], write_labels(d / "none.labels", []))
    # Trailing blank lines and surrounding spaces are fine (CIFAR-10's batches.meta.txt ends with one).
    ok = D.load_image_classification_data(tiny["list"], write_labels(d / "ok.labels", [" dog", "cat ", "", ""]))
    assert ok.labels == ["dog", "cat"]


def test_a_nul_byte_or_an_impossible_name_in_the_list_names_the_list_and_line(tiny):
    d = tiny["dir"]
    nul = d / "nul.list"
    nul.write_bytes(b"images/0_dog.png\nimages/1_cat.png\nimages/2_d\0og.png\n")
    with pytest.raises(D.DataFileError, match=r"nul\.list: line 3 holds a NUL byte") as e:
        D.load_image_classification_data(nul, tiny["labels"])
    assert e.value.path == str(nul)
    binary = d / "binary.list"   # e.g. an image given where the list should be
    binary.write_bytes((d / "images" / "0_dog.png").read_bytes())
    with pytest.raises(D.DataFileError, match=r"binary\.list: line \d+ holds a NUL byte"):
        D.load_image_classification_data(binary, tiny["labels"])
    long = write_list(d / "long.list", tiny["entries"][:2] + ["images/" + "x" * 5000 + "_cat.png"])
    with pytest.raises(OSError, match=r"cannot read image .*x{100}.*_cat\.png \(line 3 of .*long\.list\): "
                                      r"File name too long"):
        D.load_image_classification_data(long, tiny["labels"])


@pytest.mark.parametrize("workers", [0, -5, "x", "2", 2.0, True])
def test_workers_is_checked_up_front_even_when_the_cache_hits(tiny, workers):
    D.load_image_classification_data(tiny["list"], tiny["labels"])   # fills the cache
    assert cache_files()
    for cache in (True, False):
        with pytest.raises(ValueError, match=r"workers must be a positive integer .* or None.*got %s"
                                             % re.escape(repr(workers))):
            D.load_image_classification_data(tiny["list"], tiny["labels"], cache=cache, workers=workers)
    d = D.load_image_classification_data(tiny["list"], tiny["labels"], workers=np.int64(2))
    assert np.array_equal(d.X.data, tiny["X"])


def test_corrupt_and_truncated_pngs(tiny):
    bad = tiny["dir"] / "images" / "2_dog.png"
    good = bad.read_bytes()
    bad.write_bytes(good[:len(good) // 2])
    with pytest.raises(ValueError, match=r"2_dog\.png: cannot read this image \(line 3 of .*tiny\.list\)"):
        D.load_image_classification_data(tiny["list"], tiny["labels"])
    bad.write_bytes(b"GIF89a nonsense")
    with pytest.raises(ValueError, match=r"2_dog\.png: cannot read this image"):
        D.load_image_classification_data(tiny["list"], tiny["labels"])


# ---- the cache -------------------------------------------------------------------------------------------

def cache_files():
    folder = Path(os.environ["PYNET_CACHE"]) / "images"
    return sorted(folder.glob("*.bin")) if folder.is_dir() else []


def test_cache_serves_the_second_load_and_follows_changes(tiny):
    first = D.load_image_classification_data(tiny["list"], tiny["labels"])
    [entry] = cache_files()
    # Replace an image by garbage of the same size and modification time: the fingerprint cannot
    # tell, so the cached pixels (the old image) must come back: proof that the cache was used.
    victim = tiny["dir"] / "images" / "1_cat.png"
    st = victim.stat()
    victim.write_bytes(b"\0" * st.st_size)
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns))
    again = D.load_image_classification_data(tiny["list"], tiny["labels"])
    assert np.array_equal(again.X.data, first.X.data)
    # A real change (new mtime) invalidates it: the garbage is now decoded, and refused.
    os.utime(victim, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    with pytest.raises(ValueError, match="1_cat.png: cannot read"):
        D.load_image_classification_data(tiny["list"], tiny["labels"])
    write_png(victim, np.full((3, 2), 200))
    changed = D.load_image_classification_data(tiny["list"], tiny["labels"])
    assert np.all(changed.X.data[1] == 200 / 255.0)
    # So does editing the list.
    write_list(tiny["list"], tiny["entries"][:4])
    assert np.array_equal(D.load_image_classification_data(tiny["list"], tiny["labels"]).X.data[:1], first.X.data[:1])
    assert cache_files() == [entry]   # one entry per list, rewritten in place


@pytest.mark.parametrize("damage", ["flip", "truncate", "garbage", "empty"])
def test_corrupt_cache_entries_are_rebuilt(tiny, damage):
    D.load_image_classification_data(tiny["list"], tiny["labels"])
    [entry] = cache_files()
    data = bytearray(entry.read_bytes())
    if damage == "flip":
        data[-3] ^= 0xFF
    elif damage == "truncate":
        data = data[:-5]
    elif damage == "garbage":
        data[:40] = os.urandom(40)
    else:
        data = b""
    entry.write_bytes(bytes(data))
    d = D.load_image_classification_data(tiny["list"], tiny["labels"])
    assert np.array_equal(d.X.data, tiny["X"])
    assert entry.read_bytes() != bytes(data)   # rebuilt


def test_unwritable_cache_is_not_fatal(tiny, tmp_path, monkeypatch):
    blocker = tmp_path / "a-file"
    blocker.write_text("not a folder")
    monkeypatch.setenv("PYNET_CACHE", str(blocker))
    monkeypatch.setattr(_images, "_cache_warned", False)
    with pytest.warns(UserWarning, match="could not write the image cache"):
        d = D.load_image_classification_data(tiny["list"], tiny["labels"])
    assert np.array_equal(d.X.data, tiny["X"])
    assert D.load_image_classification_data(tiny["list"], tiny["labels"], cache=False).X.shape == (6, 6)


# ---- bad standard files -------------------------------------------------------------------------------------

@pytest.fixture
def small_mnist(tmp_path):
    """A valid 20-image IDX pair (gzipped), made here."""
    rng = np.random.default_rng(3)
    images = rng.integers(0, 256, (20, 28, 28)).astype(np.uint8)
    labels = (np.arange(20) % 10).astype(np.uint8)

    def idx(values):
        return struct.pack(">BBBB", 0, 0, 8, values.ndim) + struct.pack(">%dI" % values.ndim, *values.shape) \
            + values.tobytes()

    (tmp_path / "t10k-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx(images)))
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx(labels)))
    return tmp_path, images, labels, idx


def test_small_idx_files_load(small_mnist):
    root, images, labels, _ = small_mnist
    d = D.load_mnist("test", root=root)
    assert np.array_equal(d.X.data, images.reshape(20, -1) / 255.0)
    assert d.classes.tolist() == labels.tolist()


def test_bad_idx_files(small_mnist):
    root, images, labels, idx = small_mnist
    path = root / "t10k-images-idx3-ubyte.gz"
    good = path.read_bytes()
    raw = idx(images)
    path.write_bytes(gzip.compress(raw[:-100]))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: truncated or corrupt: .*20x28x28 images"):
        D.load_mnist("test", root=root)
    path.write_bytes(good[:len(good) // 2])   # a cut-off download
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: .*(truncated|corrupt)"):
        D.load_mnist("test", root=root)
    broken = bytearray(good)
    broken[len(broken) // 2] ^= 0xFF
    path.write_bytes(bytes(broken))
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte\.gz: .*corrupt"):
        D.load_mnist("test", root=root)
    path.write_bytes(gzip.compress(idx(labels)))   # a labels file under an images name
    with pytest.raises(ValueError, match=r"not an IDX file of images: its magic number is 2049"):
        D.load_mnist("test", root=root)
    path.unlink()
    (root / "t10k-images-idx3-ubyte").write_bytes(raw + b"extra")
    with pytest.raises(ValueError, match=r"t10k-images-idx3-ubyte: truncated or corrupt"):
        D.load_mnist("test", root=root)
    (root / "t10k-images-idx3-ubyte").write_bytes(idx(images[:19]))
    with pytest.raises(ValueError, match=r"t10k-labels-idx1-ubyte\.gz: holds 20 labels but .* holds 19 images"):
        D.load_mnist("test", root=root)
    (root / "t10k-images-idx3-ubyte").write_bytes(raw)
    (root / "t10k-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx(labels + 5)))
    with pytest.raises(ValueError, match=r"label 10 of item 5 is not a digit"):
        D.load_mnist("test", root=root)


def make_cifar(root, records_per_file=20, seed=4, names=CIFAR_NAMES):
    """Small CIFAR-10-format files, made here; returns the records per file."""
    rng = np.random.default_rng(seed)
    made = {}
    for name in ["data_batch_%d.bin" % i for i in range(1, 6)] + ["test_batch.bin"]:
        records = rng.integers(0, 256, (records_per_file, 3073)).astype(np.uint8)
        records[:, 0] = rng.integers(0, 10, records_per_file)
        (root / name).write_bytes(records.tobytes())
        made[name] = records
    (root / "batches.meta.txt").write_text("".join(n + "\n" for n in names) + "\n")
    return made


def test_small_cifar_files_load(tmp_path):
    made = make_cifar(tmp_path)
    train = D.load_cifar10("train", root=tmp_path)
    expected = np.concatenate([made["data_batch_%d.bin" % i] for i in range(1, 6)])
    assert np.array_equal(train.X.data, expected[:, 1:] / 255.0)
    assert np.array_equal(train.classes, expected[:, 0])


def test_bad_cifar_files(tmp_path):
    made = make_cifar(tmp_path)
    test_file = tmp_path / "test_batch.bin"
    test_file.write_bytes(made["test_batch.bin"].tobytes()[:-1000])
    with pytest.raises(ValueError, match=r"test_batch\.bin: truncated or corrupt: 60460 bytes is not a whole number"):
        D.load_cifar10("test", root=tmp_path)
    records = made["test_batch.bin"].copy()
    records[7, 0] = 12
    test_file.write_bytes(records.tobytes())
    with pytest.raises(ValueError, match=r"test_batch\.bin: record 7 has label 12 but .* names only 10 classes"):
        D.load_cifar10("test", root=tmp_path)
    test_file.unlink()
    gz = tmp_path / "test_batch.bin.gz"
    gz.write_bytes(gzip.compress(made["test_batch.bin"].tobytes())[:-30])
    with pytest.raises(ValueError, match=r"test_batch\.bin\.gz: .*(truncated|corrupt)"):
        D.load_cifar10("test", root=tmp_path)
    gz.write_bytes(gzip.compress(made["test_batch.bin"].tobytes()))
    (tmp_path / "batches.meta.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"lacks batches\.meta\.txt\[\.gz\]"):
        D.load_cifar10("test", root=tmp_path)


# ---- finding data, and the bundled sample ------------------------------------------------------------------------

def test_named_root_without_the_files(tmp_path):
    with pytest.raises(FileNotFoundError) as e:
        D.load("mnist", "train", root=tmp_path)
    message = str(e.value)
    assert str(tmp_path) in message and "train-images-idx3-ubyte[.gz]" in message
    assert "python -m pynet.datasets download mnist" in message
    with pytest.raises(FileNotFoundError, match=r"does not exist.*download cifar10"):
        D.load("cifar10", "test", root=tmp_path / "nowhere")


def test_no_cifar10_anywhere(tmp_path, monkeypatch):
    monkeypatch.setenv("PYNET_DATA", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"CIFAR-10 test data not found.*download cifar10.*no bundled sample"):
        D.load("cifar10", "test")


def test_unknown_names_and_splits():
    with pytest.raises(ValueError, match="unknown dataset 'mnsit'"):
        D.load("mnsit", "train")
    with pytest.raises(ValueError, match="split must be 'train' or 'test', got 'validation'"):
        D.load("mnist", "validation")


def test_bundled_sample_with_no_data_configured(tmp_path):
    # A fresh process with no data anywhere: the sample loads, with exactly one notice.
    code = ("import pynet.datasets as D\n"
            "train, test = D.load('mnist', 'train'), D.load('mnist', 'test')\n"
            "print(train.X.shape, test.X.shape, train.y.data.sum(0).tolist(), test.y.data.sum(0).tolist())\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120,
                            env=python_env(PYNET_DATA=str(tmp_path / "none"), PYNET_CACHE=str(tmp_path / "cache")))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "(5000, 784) (1000, 784) %s %s" % ([500.0] * 10, [100.0] * 10)
    notice = result.stderr.strip().splitlines()
    assert len(notice) == 1 and "bundled sample" in notice[0] and "download mnist" in notice[0]


def test_bundled_sample_is_a_real_subset_of_mnist(mnist_root):
    record = json.loads((D.SAMPLE_DIR / "SAMPLE.json").read_text())
    assert sum(p.stat().st_size for p in D.SAMPLE_DIR.iterdir()) < 2_000_000
    for split, stem, per_class in (("train", "train", 500), ("test", "t10k", 100)):
        full_images = raw_idx(mnist_root / ("%s-images-idx3-ubyte.gz" % stem))
        full_labels = raw_idx(mnist_root / ("%s-labels-idx1-ubyte.gz" % stem))
        # The documented selection, recomputed here: the first per_class of each digit.
        picks = np.sort(np.concatenate([np.flatnonzero(full_labels == k)[:per_class] for k in range(10)]))
        assert record["splits"][split]["indices"] == picks.tolist()
        sample = D.load_mnist(split, root=D.SAMPLE_DIR)
        assert np.array_equal(sample.X.data, full_images[picks].reshape(len(picks), -1) / 255.0)
        assert np.array_equal(sample.classes, full_labels[picks])


def test_make_sample_reproduces_the_bundled_files(mnist_root, tmp_path):
    result = run_cli("make-sample", "--root", mnist_root, "--out", tmp_path)
    assert result.returncode == 0, result.stderr
    for name in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                 "t10k-labels-idx1-ubyte.gz", "SAMPLE.json"):
        made, bundled = (tmp_path / name).read_bytes(), (D.SAMPLE_DIR / name).read_bytes()
        if name.endswith(".gz"):   # compare content: another zlib could compress differently
            made, bundled = gzip.decompress(made), gzip.decompress(bundled)
        assert made == bundled, name


def test_load_accepts_a_folder(tmp_path, small_mnist):
    root = small_mnist[0]
    assert D.load(str(root), "test").X.shape == (20, 784)
    out = tmp_path / "exported"
    D.export_png("mnist", out, root=D.SAMPLE_DIR, splits="test", limit=50)
    d = D.load(out, "test")
    assert np.array_equal(d.X.data, D.load_mnist("test", root=D.SAMPLE_DIR).X.data[:50])
    with pytest.raises(FileNotFoundError, match="holds no train data"):
        D.load(out, "train")
    with pytest.raises(NotADirectoryError, match="is a file, not a dataset folder"):
        D.load(out / "mnist.test", "test")


def test_export_never_overwrites(tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    (out / "mnist.train").write_text("mine\n")
    with pytest.raises(FileExistsError, match=r"mnist\.train already exists"):
        D.export_png("mnist", out, root=D.SAMPLE_DIR, limit=5)
    assert (out / "mnist.train").read_text() == "mine\n"
    assert sorted(p.name for p in out.iterdir()) == ["mnist.train"]   # no half-written tree left
    D.export_png("mnist", out, root=D.SAMPLE_DIR, splits="test", limit=5)
    (out / "mnist.labels").write_text("other\n")
    (out / "mnist.train").unlink()
    with pytest.raises(FileExistsError, match=r"mnist\.labels already exists with other class names"):
        D.export_png("mnist", out, root=D.SAMPLE_DIR, splits="train", limit=5)


def test_loading_holds_the_data_once(tiny):
    # The float64 X is the only large allocation: peak memory stays near its size (no transient
    # float copies). Measured on the sample's 5,000 digits (31 MB of X).
    X_bytes = 5000 * 785 * 8
    D.load_mnist("train", root=D.SAMPLE_DIR)   # imports and first-time allocations out of the way
    tracemalloc.start()
    d = D.load_mnist("train", root=D.SAMPLE_DIR, bias=True)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert d.X.shape == (5000, 785)
    assert peak < 1.25 * X_bytes, "peak %.1f MB for %.1f MB of X" % (peak / 1e6, X_bytes / 1e6)


# ---- downloads, from a local server ------------------------------------------------------------------------

@pytest.fixture
def server(tmp_path, monkeypatch):
    """An HTTP server on 127.0.0.1 serving tmp_path/served; names in .short are cut off half-way."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    served = tmp_path / "served"
    served.mkdir()
    short = set()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

        def do_GET(self):
            name = self.path.rsplit("/", 1)[-1]
            if name not in short:
                return super().do_GET()
            data = (served / self.path.lstrip("/")).read_bytes()
            self.send_response(200)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data[:len(data) // 2])
            self.close_connection = True

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield {"dir": served, "url": "http://127.0.0.1:%d/data/" % httpd.server_address[1], "short": short}
    httpd.shutdown()
    httpd.server_close()


def leftovers(folder):
    return [p.name for p in Path(folder).iterdir() if p.name.startswith(".") or p.name.endswith(".part")]


def test_download_mnist_verifies_and_is_idempotent(mnist_root, server, tmp_path, capsys):
    (server["dir"] / "data").mkdir()
    for name in MNIST_MD5:
        shutil.copy(mnist_root / name, server["dir"] / "data" / name)
    root = tmp_path / "mnist"
    got_root, report = D.download("mnist", root, mirror=server["url"], progress=True)
    assert got_root == root
    for name, md5 in MNIST_MD5.items():   # the published MD5s
        assert hashlib.md5((root / name).read_bytes()).hexdigest() == md5
    assert all("downloaded" in what for _, what in report)
    assert "train-images-idx3-ubyte.gz" in capsys.readouterr().err   # the progress line
    assert counts(D.load_mnist("test", root=root)) == MNIST_TEST_COUNTS
    _, again = D.download("mnist", root, mirror=server["url"])
    assert all("already present" in what for _, what in again)
    assert leftovers(root) == []


def test_download_checksum_mismatch_keeps_nothing(server, tmp_path, monkeypatch):
    (server["dir"] / "data").mkdir()
    (server["dir"] / "data" / "train-images-idx3-ubyte.gz").write_bytes(b"not the real file")
    root = tmp_path / "mnist"
    monkeypatch.setenv("PYNET_MNIST_MIRROR", server["url"])   # the environment variable works too
    with pytest.raises(D.ChecksumError, match=r"train-images-idx3-ubyte\.gz failed the checksum test.*"
                                              r"not the published f68b3c2dcbeaaa9fbdd348bbdeb94873"):
        D.download("mnist", root)
    assert not root.exists()


def test_download_cut_off_keeps_nothing(server, tmp_path):
    (server["dir"] / "data").mkdir()
    (server["dir"] / "data" / "train-images-idx3-ubyte.gz").write_bytes(os.urandom(300_000))
    server["short"].add("train-images-idx3-ubyte.gz")
    root = tmp_path / "mnist"
    with pytest.raises(D.DownloadError, match=r"closed after 150000 of 300000 bytes"):
        D.download("mnist", root, mirror=server["url"])
    assert not root.exists()


def test_download_leaves_a_users_mismatching_file_alone(server, tmp_path):
    root = tmp_path / "mnist"
    root.mkdir()
    (root / "train-images-idx3-ubyte.gz").write_bytes(b"my own file")
    with pytest.raises(D.ChecksumError, match="left untouched"):
        D.download("mnist", root, mirror=server["url"])
    assert (root / "train-images-idx3-ubyte.gz").read_bytes() == b"my own file"


def closed_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_download_offline_is_one_clear_line(tmp_path):
    url = "http://127.0.0.1:%d/" % closed_port()
    result = run_cli("download", "mnist", "--root", tmp_path / "m", "--mirror", url, "--quiet",
                     no_proxy="127.0.0.1", http_proxy="", HTTP_PROXY="")
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith("python -m pynet.datasets: error: cannot download train-images-idx3-ubyte.gz "
                               "from 127.0.0.1:")
    assert "offline" in lines[0] and "--mirror" in lines[0]
    assert not (tmp_path / "m").exists()   # the folder it made for the download is gone again


def cifar_tarball(made, folder="cifar-10-batches-bin", skip=()):
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, records in list(made.items()) + [("batches.meta.txt", None)]:
            if name in skip:
                continue
            data = records.tobytes() if records is not None else ("\n".join(CIFAR_NAMES) + "\n\n").encode()
            info = tarfile.TarInfo("%s/%s" % (folder, name))
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buf.getvalue()


def test_download_cifar10_extracts_the_archive(server, tmp_path, monkeypatch):
    made = make_cifar(tmp_path)   # records made here; the tarball is laid out as the real one
    archive = cifar_tarball({k: v for k, v in made.items()})
    (server["dir"] / "data").mkdir()
    (server["dir"] / "data" / "cifar-10-binary.tar.gz").write_bytes(archive)
    # The real archive's MD5 cannot match a test archive; point the expected MD5 at this one.
    spec = dict(_download.SOURCES["cifar10"]["archive"], md5=hashlib.md5(archive).hexdigest())
    monkeypatch.setitem(_download.SOURCES["cifar10"], "archive", spec)
    root = tmp_path / "cifar10"
    D.download("cifar10", root, mirror=server["url"])
    assert sorted(p.name for p in root.iterdir()) == sorted(list(made) + ["batches.meta.txt"])
    test = D.load_cifar10("test", root=root)
    assert np.array_equal(test.X.data, made["test_batch.bin"][:, 1:] / 255.0)
    # With the right MD5 restored, the same archive is refused and nothing new is written.
    monkeypatch.setitem(_download.SOURCES["cifar10"], "archive", dict(spec, md5="c32a1d4ab5d03f1284b67883e8d87530"))
    other = tmp_path / "other"
    with pytest.raises(D.ChecksumError, match="c32a1d4ab5d03f1284b67883e8d87530"):
        D.download("cifar10", other, mirror=server["url"])
    assert not other.exists()


def test_download_cifar10_archive_missing_a_member(server, tmp_path, monkeypatch):
    made = make_cifar(tmp_path)
    archive = cifar_tarball(made, skip=("test_batch.bin",))
    (server["dir"] / "data").mkdir()
    (server["dir"] / "data" / "cifar-10-binary.tar.gz").write_bytes(archive)
    spec = dict(_download.SOURCES["cifar10"]["archive"], md5=hashlib.md5(archive).hexdigest())
    monkeypatch.setitem(_download.SOURCES["cifar10"], "archive", spec)
    root = tmp_path / "cifar10"
    with pytest.raises(ValueError, match=r"the archive has no cifar-10-batches-bin/test_batch\.bin"):
        D.download("cifar10", root, mirror=server["url"])
    assert leftovers(root) == []


def test_cli_info_and_help():
    result = run_cli("info")
    assert result.returncode == 0, result.stderr
    assert "mnist" in result.stdout and "cifar10" in result.stdout and "image cache" in result.stdout
    result = run_cli("--help")
    assert result.returncode == 0 and "download" in result.stdout and "export-png" in result.stdout
