"""Issue 10's reproducers for dataset files (items 3, 4): IDX sizes are checked in Python ints and
name the file; anything unexpected in the decode cache is a miss, never an error."""
import json
import struct
import zlib

import numpy as np
import pytest

from pynet.datasets import _images, _mnist
from pynet.datasets._common import DataFileError


@pytest.fixture(autouse=True)
def private_cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("PYNET_CACHE", str(tmp_path_factory.mktemp("cache")))


def idx(path, dims, body=b""):
    path.write_bytes(struct.pack(">BBBB", 0, 0, 8, len(dims)) + struct.pack(">%dI" % len(dims), *dims) + body)
    return path


@pytest.mark.parametrize("dims", [(65536, 65536, 1), (2 ** 31, 2 ** 31, 4), (2 ** 32 - 1, 2 ** 32 - 1, 2 ** 32 - 1),
                                  (0, 2 ** 31, 2 ** 31)])
def test_idx_sizes_are_checked_in_python_ints(tmp_path, dims):
    path = idx(tmp_path / "images-idx3-ubyte", dims)
    if 0 in dims:   # an empty file of that shape is well-formed
        assert _mnist.read_idx(path, 3, "images").shape == dims
        return
    with pytest.raises(DataFileError) as e:
        _mnist.read_idx(path, 3, "images")
    assert str(path) in str(e.value)
    assert "x".join(map(str, dims)) in str(e.value)


def test_a_gzip_idx_cannot_claim_more_than_deflate_can_give(tmp_path):
    import gzip
    path = tmp_path / "images-idx3-ubyte.gz"
    raw = struct.pack(">BBBB", 0, 0, 8, 3) + struct.pack(">3I", 65536, 65536, 1)
    path.write_bytes(gzip.compress(raw))   # trailer: 16 bytes, equal to 4 + 12 + 2**32 modulo 2**32
    with pytest.raises(DataFileError) as e:
        _mnist.read_idx(path, 3, "images")
    assert str(path) in str(e.value)


def test_good_idx_still_reads(tmp_path):
    body = bytes(range(24))
    got = _mnist.read_idx(idx(tmp_path / "x", (2, 3, 4), body), 3, "images")
    assert got.tobytes() == body


def cache_entry(list_path, header_bytes, body=b""):
    path = _images._cache_file(list_path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_images._CACHE_MAGIC + struct.pack("<I", len(header_bytes)) + header_bytes + body)


def header(**fields):
    base = {"version": _images._CACHE_VERSION, "fingerprint": "fp", "n": 2, "shape": [1, 1, 3],
            "crc32": zlib.crc32(bytes(6))}
    base.update(fields)
    return json.dumps(base).encode()


@pytest.mark.parametrize("raw", [
    b"5",                                          # a header that is an int
    b"[" * 50000,                                  # nested too deeply for the JSON parser
    b"\xff\xfe",                                   # not UTF-8
    header(shape=[-1, -1, 60], n=1, crc32=zlib.crc32(bytes(60))),
    header(shape=[1, 1]),
    header(shape="abc"),
    header(shape=[1.5, 2, 2]),
    header(shape=[True, 1, 3]),
    header(crc32="x"),
    header(n=-2),
    header(shape=[2 ** 40, 2 ** 40, 3]),
], ids=["int", "nested", "not-utf8", "negative-shape", "short-shape", "str-shape", "float-shape", "bool-shape",
        "str-crc", "negative-n", "huge-shape"])
def test_anything_unexpected_in_the_cache_is_a_miss(tmp_path, raw):
    lst = tmp_path / "list.txt"
    lst.write_text("")
    shape_bytes = 60 if b"60" in raw else 6
    cache_entry(lst, raw, bytes(shape_bytes))
    assert _images._cache_load(lst, "fp", 2) is None
    assert _images._cache_load(lst, "fp", 1) is None


def test_a_good_cache_entry_is_a_hit(tmp_path):
    lst = tmp_path / "list.txt"
    lst.write_text("")
    cache_entry(lst, header(), bytes(6))
    pixels, shape = _images._cache_load(lst, "fp", 2)
    assert shape == (1, 1, 3) and pixels.shape == (2, 3)


def test_a_folder_as_an_image_list_says_so(tmp_path):
    """Issue 10 item 14: not 'image list not found' for a folder that exists."""
    (tmp_path / "labels.txt").write_text("a\nb\n")
    with pytest.raises(IsADirectoryError, match="is a folder, not an image list"):
        _images.load_image_classification_data(tmp_path, tmp_path / "labels.txt", cache=False)


def test_a_missing_image_names_each_path_once(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "labels.txt").write_text("a\nb\n")
    (tmp_path / "list.txt").write_text("a_1.png\n")
    with pytest.raises(FileNotFoundError) as e:
        _images.load_image_classification_data(tmp_path / "list.txt", tmp_path / "labels.txt", cache=False)
    assert str(e.value).count(str(tmp_path / "a_1.png")) == 1, str(e.value)


def test_a_cifar10_folder_given_for_mnist_suggests_a_sibling_folder(tmp_path):
    """Issue 10 item 14: not 'download mnist --root .../cifar10'."""
    from pynet.datasets import load_mnist
    (tmp_path / "cifar10").mkdir()
    with pytest.raises(FileNotFoundError) as e:
        load_mnist("test", root=tmp_path / "cifar10")
    assert "download mnist --root %s" % (tmp_path / "mnist") in str(e.value), str(e.value)
