"""Fuzz targets for every reader of untrusted files (issue 10): the model loader (bytes and .npy
headers), IDX, CIFAR-10 binary, PNG lists and the decode cache. Each asserts the one promise its
reader makes: a named pynet error (or a clean result), never another exception, crash or hang.

The normal test suite runs each target briefly and deterministically (derandomize=True, a few
seconds in all). For a longer campaign raise the number of examples per target:

    PYNET_FUZZ_EXAMPLES=20000 python -m pytest -q tests/fuzz -p no:cacheprovider

Every reproducer from issue 10 is an @example, so it is always run first."""
import io
import json
import os
import struct
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from pynet import ModelFileError, load_model, make_layer, make_model, save_model
from pynet._npy import parse_header
from pynet.datasets import _cifar10, _images, _mnist
from pynet.datasets._common import DataFileError

FUZZ = settings(max_examples=int(os.environ.get("PYNET_FUZZ_EXAMPLES", "40")), derandomize=True, deadline=None,
                database=None, suppress_health_check=list(HealthCheck))


def _good_model_bytes():
    import tempfile
    m = make_model([make_layer(3, 4, "relu", bias=True), make_layer(4, 2, "softmax")])
    m.labels = ["a", "b"]
    with tempfile.TemporaryDirectory() as d:
        path = os.path.join(d, "m.npz")
        save_model(m, path)
        with open(path, "rb") as f:
            return f.read()


GOOD_MODEL = _good_model_bytes()


def _load_bytes(tmp_path_factory, data, name="fuzz.npz"):
    path = tmp_path_factory.mktemp("fuzz") / name
    path.write_bytes(data)
    try:
        load_model(path)
    except ModelFileError as e:
        assert str(path) in str(e)


@FUZZ
@given(flips=st.lists(st.tuples(st.integers(0, len(GOOD_MODEL) - 1), st.integers(1, 255)), max_size=8),
       cut=st.integers(0, len(GOOD_MODEL)))
@example(flips=[], cut=len(GOOD_MODEL) // 2)
def test_fuzz_model_bytes(tmp_path_factory, flips, cut):
    data = bytearray(GOOD_MODEL)
    for at, x in flips:
        data[at] ^= x
    _load_bytes(tmp_path_factory, bytes(data[:cut] if cut < len(data) else data))


def _npy(header, body=b""):
    text = header.encode("latin1", "replace")
    text += b" " * (-(10 + len(text) + 1) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text) & 0xFFFF) + text + body


def _with_entry(name, raw):
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(GOOD_MODEL)) as src, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as dst:
        for info in src.infolist():
            dst.writestr(info.filename, raw if info.filename == name else src.read(info))
    return out.getvalue()


_HEADER_PIECES = st.sampled_from(["{", "}", "(", ")", ",", " ", "'descr'", "'shape'", "'fortran_order'", ":",
                                  "'<f8'", "'|u1'", "True", "False", "0", "3", "4", "-1", "10**29", "4294967296",
                                  "\n", "\t", "[", "__import__('os')", "'", "\\"])


@FUZZ
@given(header=st.one_of(st.text(max_size=80), st.lists(_HEADER_PIECES, max_size=30).map("".join)),
       entry=st.sampled_from(["metadata.npy", "w0.npy", "b0.npy"]), body=st.binary(max_size=64))
@example(header="{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), ", entry="w0.npy", body=b"")
@example(header="  {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }", entry="w0.npy", body=b"")
@example(header="{'descr': '|u1', 'fortran_order': False, 'shape': (10**29,), }", entry="metadata.npy", body=b"")
@example(header="{'descr': '|u1', 'fortran_order': False, 'shape': (100000000000000000000000000000,), }",
         entry="metadata.npy", body=b"")
@example(header="{'descr': '<f8', 'fortran_order': False, 'shape': (4294967296, 4294967296), }",
         entry="w0.npy", body=b"")
def test_fuzz_model_npy_headers(tmp_path_factory, header, entry, body):
    try:
        parse_header(header)
    except ValueError:
        pass
    _load_bytes(tmp_path_factory, _with_entry(entry, _npy(header, body)))


@FUZZ
@given(dims=st.lists(st.integers(0, 2 ** 32 - 1), min_size=1, max_size=3), body=st.binary(max_size=64),
       magic=st.sampled_from([b"\0\0\x08", b"\0\0\x09", b"\x1f\x8b\x08"]))
@example(dims=[65536, 65536, 1], body=b"", magic=b"\0\0\x08")
@example(dims=[2 ** 31, 2 ** 31, 4], body=b"", magic=b"\0\0\x08")
@example(dims=[0, 3_036_988_439, 3_037_012_561], body=b"", magic=b"\0\0\x08")   # found by make fuzz: no bytes, no array
def test_fuzz_idx(tmp_path_factory, dims, body, magic):
    path = tmp_path_factory.mktemp("idx") / "images-idx3-ubyte"
    path.write_bytes(magic + bytes([len(dims)]) + struct.pack(">%dI" % len(dims), *dims) + body)
    try:
        got = _mnist.read_idx(path, len(dims), "values")
        assert got.shape == tuple(dims)
    except DataFileError as e:
        assert str(path) in str(e)


@FUZZ
@given(records=st.binary(max_size=3 * 3073), names=st.binary(max_size=80), gz=st.booleans())
def test_fuzz_cifar10(tmp_path_factory, records, names, gz):
    import gzip
    folder = tmp_path_factory.mktemp("cifar")
    for name in _cifar10.FILES["test"]:
        data = records if not gz else gzip.compress(records)
        (folder / (name + (".gz" if gz else ""))).write_bytes(data)
    (folder / _cifar10.META).write_bytes(names)
    try:
        got, labels = _cifar10.read("test", folder)
        assert got.shape[1] == 3073
    except DataFileError as e:
        assert str(folder) in str(e)


@FUZZ
@given(lines=st.lists(st.one_of(st.text(max_size=20), st.sampled_from(["a.png", "b.png", "../a.png", "", "#", "\0"])),
                      max_size=6),
       labels=st.lists(st.text(max_size=8), max_size=4))
def test_fuzz_png_lists(tmp_path_factory, lines, labels):
    from PIL import Image
    folder = tmp_path_factory.mktemp("png")
    Image.fromarray(np.zeros((2, 2), np.uint8)).save(folder / "a.png")
    (folder / "b.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    lst, lab = folder / "list.txt", folder / "labels.txt"
    lst.write_text("\n".join(lines), errors="surrogateescape") if all("\ud800" > c or c > "\udfff" for c in "".join(lines)) \
        else lst.write_bytes("\n".join(lines).encode("utf-8", "replace"))
    lab.write_bytes("\n".join(labels).encode("utf-8", "replace"))
    try:
        _images.load_image_classification_data(lst, lab, cache=False, workers=1)
    except (DataFileError, FileNotFoundError) as e:
        assert str(folder) in str(e) or "list" in str(e)


@FUZZ
@given(raw=st.one_of(st.binary(max_size=200), st.builds(lambda d: json.dumps(d).encode(), st.dictionaries(
    st.sampled_from(["version", "fingerprint", "n", "shape", "crc32"]),
    st.one_of(st.integers(-2, 2 ** 40), st.text(max_size=4), st.lists(st.integers(-2, 70), max_size=4),
              st.booleans(), st.none(), st.floats(allow_nan=True))))),
       body=st.binary(max_size=64))
@example(raw=b"5", body=b"")
@example(raw=b"[" * 50000, body=b"")
@example(raw=json.dumps({"version": 1, "fingerprint": "fp", "n": 1, "shape": [-1, -1, 60],
                         "crc32": zlib.crc32(bytes(60))}).encode(), body=bytes(60))
def test_fuzz_decode_cache(tmp_path_factory, monkeypatch_module, raw, body):
    folder = tmp_path_factory.mktemp("cache")
    monkeypatch_module.setenv("PYNET_CACHE", str(folder))
    lst = folder / "list.txt"
    lst.write_text("")
    path = _images._cache_file(lst)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(_images._CACHE_MAGIC + struct.pack("<I", len(raw)) + raw + body)
    got = _images._cache_load(lst, "fp", 1)
    assert got is None or (got[0].shape[0] == 1 and len(got[1]) == 3)


@pytest.fixture(scope="module")
def monkeypatch_module():
    mp = pytest.MonkeyPatch()
    yield mp
    mp.undo()
