"""Issue 10's reproducers for model files (items 1, 2, 6): every bad file is a ModelFileError naming
the file, sizes are bounded before anything is inflated or allocated, and loading is thread-safe."""
import ast
import struct
import threading
import tracemalloc
import zipfile

import numpy as np
import pytest

import pynet
from pynet import ModelFileError, load_model, make_layer, make_model, save_model
from pynet import io as pio


@pytest.fixture
def saved(tmp_path):
    m = make_model([make_layer(3, 4, "relu", bias=True), make_layer(4, 2, "softmax")])
    path = tmp_path / "good.npz"
    save_model(m, path)
    return path


def entries(path):
    with zipfile.ZipFile(path) as z:
        return {i.filename: z.read(i) for i in z.infolist()}


def write(path, files, compression=zipfile.ZIP_DEFLATED):
    with zipfile.ZipFile(path, "w", compression) as z:
        for name, data in files.items():
            z.writestr(name, data)
    return path


def npy(header, body=b""):
    """A .npy version 1.0 entry with the header text given verbatim (padded as numpy pads it)."""
    text = header.encode("latin1")
    pad = -(10 + len(text) + 1) % 64
    text += b" " * pad + b"\n"
    return b"\x93NUMPY\x01\x00" + struct.pack("<H", len(text)) + text + body


def with_w0(tmp_path, saved, raw, name="bad.npz"):
    files = entries(saved)
    files["w0.npy"] = raw
    return write(tmp_path / name, files)


def refused(path, *fragments):
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    message = str(e.value)
    assert str(path) in message, message
    for fragment in fragments:
        assert fragment in message, message
    return message


def patch_flags(path, entry, bit):
    """Set a general-purpose flag bit on ``entry`` in its local header and central directory."""
    data = bytearray(path.read_bytes())
    name = entry.encode()
    for sig, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        i = data.find(sig)
        while i >= 0:
            if data[i + name_at:i + name_at + len(name)] == name:
                flags = struct.unpack_from("<H", data, i + flag_at)[0]
                struct.pack_into("<H", data, i + flag_at, flags | bit)
            i = data.find(sig, i + 4)
    path.write_bytes(bytes(data))


# ---- item 1: seven exception types that escaped -------------------------------------------------

def test_an_entry_flagged_encrypted(tmp_path, saved):
    bad = tmp_path / "encrypted.npz"
    bad.write_bytes(saved.read_bytes())
    patch_flags(bad, "w0.npy", 0x1)
    refused(bad, "w0", "encrypted")


def test_a_utf8_flagged_name_with_an_invalid_byte(tmp_path, saved):
    bad = tmp_path / "badname.npz"
    data = saved.read_bytes().replace(b"w0.npy", b"w\xff.npy")
    bad.write_bytes(data)
    data = bytearray(bad.read_bytes())
    for sig, flag_at, name_at in ((b"PK\x03\x04", 6, 30), (b"PK\x01\x02", 8, 46)):
        i = data.find(sig)
        while i >= 0:
            if data[i + name_at:i + name_at + 6] == b"w\xff.npy":
                flags = struct.unpack_from("<H", data, i + flag_at)[0]
                struct.pack_into("<H", data, i + flag_at, flags | 0x800)
            i = data.find(sig, i + 4)
    bad.write_bytes(bytes(data))
    refused(bad)


def test_a_damaged_lzma_entry(tmp_path, saved):
    files = entries(saved)
    files["w0.npy"] = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }",
                          np.arange(12.0).tobytes() * 50)
    bad = write(tmp_path / "lzma.npz", files, zipfile.ZIP_LZMA)
    data = bytearray(bad.read_bytes())
    with zipfile.ZipFile(bad) as z:
        info = z.getinfo("w0.npy")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    for k in range(start + 20, start + info.compress_size - 4):
        data[k] ^= 0x5A
    bad.write_bytes(bytes(data))
    refused(bad)


@pytest.mark.parametrize("header", [
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), ",       # unterminated: tokenize error
    "  {'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), }",     # indented: IndentationError
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3, 4), 'x': __import__('os')}",
    "{'descr': '<f8', 'fortran_order': False, 'shape': (3, -4), }",
    "{'descr': '<f8', 'fortran_order': 0, 'shape': (3, 4), }",
    "{'descr': '<f8', 'shape': (3, 4), }",
    "[1, 2, 3]",
])
def test_malformed_npy_header_dicts(tmp_path, saved, header):
    refused(with_w0(tmp_path, saved, npy(header, bytes(96))), "w0")


@pytest.mark.parametrize("shape", ["(10**29, 1)", "(100000000000000000000000000000, 1)",
                                   "(4294967296, 4294967296)", "(0, 4294967296, 4294967296)"])
def test_huge_or_wrapping_shapes(tmp_path, saved, shape):
    refused(with_w0(tmp_path, saved, npy("{'descr': '<f8', 'fortran_order': False, 'shape': %s, }" % shape)),
            "w0")


def test_a_wrapping_shape_in_the_metadata_entry(tmp_path, saved):
    files = entries(saved)
    files["metadata.npy"] = npy("{'descr': '|u1', 'fortran_order': False, 'shape': (4294967296, 4294967296), }")
    refused(write(tmp_path / "meta.npz", files), "metadata")


def test_a_stored_archive_loads_and_a_bzip2_one_is_refused_by_name(tmp_path, saved):
    load_model(write(tmp_path / "stored.npz", entries(saved), zipfile.ZIP_STORED))
    refused(write(tmp_path / "bzip2.npz", entries(saved), zipfile.ZIP_BZIP2), "compression method 12")


# ---- item 2: sizes bounded before inflating ------------------------------------------------------

def test_a_header_claiming_more_than_the_entry_holds_is_refused_before_inflating(tmp_path, saved):
    # 1 GiB of float64 declared, a few bytes stored: the zip directory says the entry is small
    raw = npy("{'descr': '<f8', 'fortran_order': False, 'shape': (16384, 8192), }", bytes(64))
    refused(with_w0(tmp_path, saved, raw), "w0")


def test_the_zip_directory_cannot_claim_more_than_deflate_can_give(tmp_path, saved):
    bad = tmp_path / "ratio.npz"
    bad.write_bytes(saved.read_bytes())
    data = bytearray(bad.read_bytes())
    i = data.find(b"PK\x01\x02")
    while i >= 0:   # every central-directory entry claims 3 GB uncompressed
        struct.pack_into("<I", data, i + 24, 3 << 30)
        i = data.find(b"PK\x01\x02", i + 4)
    bad.write_bytes(bytes(data))
    refused(bad)


def test_the_total_across_entries_is_bounded(tmp_path, monkeypatch):
    m = make_model([make_layer(64, 64, "relu"), make_layer(64, 64, "relu"), make_layer(64, 2, "softmax")])
    path = tmp_path / "three.npz"
    save_model(m, path)
    load_model(path)
    monkeypatch.setattr(pio, "_TOTAL_LIMIT", 64 * 64 * 8 + 4096)   # room for one 64x64 layer, not two
    refused(path, "total")


def test_a_big_zero_layer_loads_without_a_second_copy(tmp_path):
    n = 1024   # the case is 8192 x 8192 (510 KiB on disk, 1.08 GB to load); same shape of problem
    m = make_model([make_layer(n, n, "relu")])
    m.layers[0].w = np.zeros((n, n))
    path = tmp_path / "zeros.npz"
    save_model(m, path)
    tracemalloc.start()
    try:
        got = load_model(path)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert not np.any(got.layers[0].w.data)
    assert peak < 1.5 * n * n * 8, "loading an %d MB layer peaked at %d MB" % (n * n * 8 >> 20, peak >> 20)


# ---- item 6: thread safety ------------------------------------------------------------------------

def test_loading_does_not_use_ast_literal_eval(saved, monkeypatch):
    def boom(*a, **k):
        raise AssertionError("ast.literal_eval is not thread-safe in CPython 3.11")
    monkeypatch.setattr(ast, "literal_eval", boom)
    load_model(saved)


def test_threads_loading_models_at_once(saved):
    expected = load_model(saved).layers[0].w
    failures = []

    def work():
        try:
            for _ in range(60):
                np.testing.assert_array_equal(load_model(saved).layers[0].w, expected)
        except Exception as e:   # noqa: BLE001 - collected and reported below
            failures.append(repr(e))

    threads = [threading.Thread(target=work) for _ in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not failures, failures[:3]
