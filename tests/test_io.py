"""Saving and loading models (pynet.io): the round trip gives bit-identical predictions, writes are
atomic, and every kind of bad file — missing, empty, of another type, a pickle, truncated,
corrupt, inconsistent with its own metadata, from a newer pynet — is refused with an error that
names the file and the problem, without running anything from it."""
import io
import json
import os
import pickle
import zipfile

import numpy as np
import pytest

import pynet
from pynet import ModelFileError, Standardizer, fit, load_model, make_data, make_layer, make_model, predict_model, \
    save_model


def sample_model(seed=1):
    pynet.set_seed(seed)
    m = make_model([make_layer(6, 5, "tanh", bias=True, dropout=0.2),
                    make_layer(5, 4, "relu", dropout=0.5),
                    make_layer(4, 3, "softmax", bias=True)])
    rng = np.random.default_rng(seed)
    for l in m.layers:
        if l.b is not None:
            l.b = rng.normal(size=l.outputs)
    m.labels = ["cat", "dog", "émeu"]
    m.standardizer = Standardizer(rng.normal(size=6), rng.uniform(0.5, 2, 6))
    m.info = {"data": "synthetic", "epochs": 3, "history": [{"val_accuracy": 0.5}], "rate": np.float64(0.1)}
    return m


def test_round_trip_gives_bit_identical_predictions_and_the_same_model(tmp_path):
    m = sample_model()
    path = tmp_path / "model.npz"
    assert save_model(m, path) == str(path)
    m2 = load_model(path)
    X = np.random.default_rng(2).normal(size=(300, 6)) * 3
    np.testing.assert_array_equal(predict_model(m2, X).data, predict_model(m, X).data)
    assert [repr(l) for l in m2.layers] == [repr(l) for l in m.layers]
    for a, b in zip(m.layers, m2.layers):
        assert a.w.data.tobytes() == b.w.data.tobytes()
        assert (a.b is None and b.b is None) or a.b.data.tobytes() == b.b.data.tobytes()
        assert a.dropout == b.dropout
    assert m2.labels == ["cat", "dog", "émeu"]
    assert m2.standardizer.mean.tobytes() == m.standardizer.mean.tobytes()
    assert m2.standardizer.std.tobytes() == m.standardizer.std.tobytes()
    assert m2.info == {"data": "synthetic", "epochs": 3, "history": [{"val_accuracy": 0.5}], "rate": 0.1}


def test_round_trip_of_a_trained_model_and_of_a_bare_homework_model(tmp_path):
    rng = np.random.default_rng(3)
    X = rng.normal(size=(200, 4))
    d = make_data(X, (X[:, 0] > 0).astype(int), 2)
    pynet.set_seed(4)
    m = make_model([make_layer(4, 8, "lrelu", bias=True, dropout=0.1), make_layer(8, 2, "softmax", bias=True)])
    fit(m, d, epochs=3, batch=20, optimizer="adam", rate=0.01, progress=False)
    save_model(m, tmp_path / "trained.npz")
    np.testing.assert_array_equal(predict_model(load_model(tmp_path / "trained.npz"), X).data, predict_model(m, X).data)

    bare = make_model([make_layer(4, 2, "softmax")])   # no bias, labels, standardizer or info
    save_model(bare, tmp_path / "bare.npz")
    back = load_model(tmp_path / "bare.npz")
    assert back.labels is None and back.standardizer is None and back.info == {}
    assert back.layers[0].b is None
    np.testing.assert_array_equal(predict_model(back, X).data, predict_model(bare, X).data)


def test_the_file_is_an_npz_with_documented_entries_and_json_metadata(tmp_path):
    path = tmp_path / "m.npz"
    save_model(sample_model(), path)
    with np.load(path, allow_pickle=False) as z:
        assert sorted(z.files) == ["b0", "b2", "metadata", "standardizer_mean", "standardizer_std", "w0", "w1", "w2"]
        meta = json.loads(z["metadata"].tobytes().decode("utf-8"))
        assert z["w1"].shape == (5, 4) and z["b2"].shape == (3,) and z["w0"].dtype == np.float64
    assert meta["format"] == "pynet-model" and meta["version"] == 2
    assert meta["layers"][0] == {"inputs": 6, "outputs": 5, "activation": "tanh", "bias": True, "dropout": 0.2,
                                 "norm": False}
    assert meta["layers"][1]["bias"] is False and meta["standardizer"] is True


def test_save_overwrites_atomically_and_leaves_no_temporary_files(tmp_path, monkeypatch):
    path = tmp_path / "m.npz"
    save_model(sample_model(1), path)
    save_model(sample_model(2), path)
    assert os.listdir(tmp_path) == ["m.npz"]
    good = path.read_bytes()

    def fail_midway(f, **arrays):
        f.write(b"PK partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(np, "savez_compressed", fail_midway)
    with pytest.raises(KeyboardInterrupt):
        save_model(sample_model(3), path)
    assert path.read_bytes() == good          # the old model is intact
    assert os.listdir(tmp_path) == ["m.npz"]  # and the half-written temporary file is gone


def test_save_errors_name_the_path(tmp_path):
    m = sample_model()
    with pytest.raises(FileNotFoundError, match="no-such-folder"):
        save_model(m, tmp_path / "no-such-folder" / "m.npz")
    with pytest.raises(IsADirectoryError, match="it is a folder"):
        save_model(m, tmp_path)
    with pytest.raises(ValueError, match="JSON"):
        save_model(m, tmp_path / "m.npz", info={"when": object()})
    with pytest.raises(ValueError, match="JSON"):
        save_model(m, tmp_path / "m.npz", info={"loss": float("nan")})
    m.labels = ["only one"]
    with pytest.raises(ValueError, match="1 labels but 3 outputs"):
        save_model(m, tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root can write anywhere")
def test_save_to_a_read_only_folder_is_a_permission_error_naming_the_path(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="ro/m.npz"):
            save_model(sample_model(), ro / "m.npz")
    finally:
        ro.chmod(0o700)


def test_save_under_a_file_names_it_and_leaves_it_alone(tmp_path):
    """Runs as root too (where the read-only folder test cannot): a folder that is a file."""
    f = tmp_path / "notes.txt"
    f.write_text("keep me")
    with pytest.raises(NotADirectoryError, match="notes.txt is a file, not a folder"):
        save_model(sample_model(), f / "m.npz")
    assert f.read_text() == "keep me"


# ---- bad files ---------------------------------------------------------------------------------------

def rewrite(src, dst, metadata=None, drop=(), replace=None, add=None):
    """A copy of the model archive src with its metadata edited and arrays dropped/replaced/added."""
    with np.load(src, allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    meta = json.loads(arrays["metadata"].tobytes())
    if metadata:
        metadata(meta)
    arrays["metadata"] = np.frombuffer(json.dumps(meta).encode(), np.uint8)
    for k in drop:
        del arrays[k]
    arrays.update(replace or {})
    arrays.update(add or {})
    np.savez(dst, **arrays)
    return dst


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "good.npz"
    save_model(sample_model(), path)
    return path


def refused(path, *fragments):
    with pytest.raises(ModelFileError) as e:
        load_model(path)
    message = str(e.value)
    assert str(path) in message
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_missing_file_and_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="model file not found: .*nope.npz"):
        load_model(tmp_path / "nope.npz")
    refused(tmp_path, "is a folder")


def test_files_of_the_wrong_type(tmp_path):
    (tmp_path / "empty.npz").write_bytes(b"")
    refused(tmp_path / "empty.npz", "empty")
    (tmp_path / "text.npz").write_text("hello, I am a CSV file\n1,2,3\n")
    refused(tmp_path / "text.npz", "not an .npz (zip) archive")
    np.save(tmp_path / "array.npy", np.zeros(3))
    refused(tmp_path / "array.npy", "single NumPy array")
    np.savez(tmp_path / "other.npz", a=np.zeros(3))
    refused(tmp_path / "other.npz", "no 'metadata' entry")
    with zipfile.ZipFile(tmp_path / "docs.zip", "w") as z:
        z.writestr("readme.txt", "not a model")
    refused(tmp_path / "docs.zip", "unexpected entry 'readme.txt'")


class _Tripwire:
    """Unpickling this would create a folder: the tests check that it never happens."""

    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_pickles_are_refused_without_running_them(tmp_path, saved):
    target = str(tmp_path / "pwned")
    (tmp_path / "evil.npz").write_bytes(pickle.dumps(_Tripwire(target)))
    refused(tmp_path / "evil.npz", "pickle")
    # an archive that looks right but whose weights are a pickled object array
    evil = np.empty(1, dtype=object)
    evil[0] = _Tripwire(target)
    buf = io.BytesIO()
    np.save(buf, evil, allow_pickle=True)
    src = rewrite(saved, tmp_path / "objects.npz")
    with zipfile.ZipFile(src) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    entries["w0.npy"] = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "objects.npz", "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)
    refused(tmp_path / "objects.npz", "'w0'", "object")
    assert not os.path.exists(target)


def test_truncated_files(tmp_path, saved):
    data = saved.read_bytes()
    for keep in (len(data) // 2, len(data) - 10, 100):
        (tmp_path / "cut.npz").write_bytes(data[:keep])
        refused(tmp_path / "cut.npz", "truncated")


def test_a_flipped_byte_inside_the_weights_is_caught(tmp_path, saved):
    data = bytearray(saved.read_bytes())
    with zipfile.ZipFile(saved) as z:
        info = z.getinfo("w0.npy")
    # the local header is 30 bytes + name + extra field; flip a byte in the middle of the deflate data
    start = info.header_offset + 30 + len(info.filename.encode()) + len(info.extra)
    data[start + info.compress_size // 2] ^= 0x55
    (tmp_path / "flipped.npz").write_bytes(bytes(data))
    refused(tmp_path / "flipped.npz", "corrupt", "'w0'")


def test_arrays_that_do_not_match_the_metadata(tmp_path, saved):
    refused(rewrite(saved, tmp_path / "a.npz", drop=["w1"]), "lacks the array w1")
    refused(rewrite(saved, tmp_path / "b.npz", drop=["b2"]), "lacks the array b2")
    refused(rewrite(saved, tmp_path / "c.npz", replace={"w1": np.zeros((4, 5))}), "'w1'", "shape 4x5, expected 5x4")
    refused(rewrite(saved, tmp_path / "d.npz", replace={"w0": np.zeros((6, 5), np.float32)}), "'w0'", "float32")
    refused(rewrite(saved, tmp_path / "e.npz", add={"w7": np.zeros(2)}), "unexpected entry w7")
    refused(rewrite(saved, tmp_path / "f.npz", add={"b1": np.zeros(4)}), "unexpected entry b1")
    nan = np.zeros((5, 4))
    nan[2, 1] = np.nan
    refused(rewrite(saved, tmp_path / "g.npz", replace={"w1": nan}), "'w1'", "NaN")
    refused(rewrite(saved, tmp_path / "h.npz", replace={"standardizer_std": np.zeros(6)}), "standardizer_std")
    refused(rewrite(saved, tmp_path / "i.npz", drop=["standardizer_mean"]), "lacks the array standardizer_mean")


def test_metadata_problems(tmp_path, saved):
    def edit(name, change):
        return rewrite(saved, tmp_path / name, metadata=change)

    refused(edit("act.npz", lambda m: m["layers"][1].update(activation="swish")),
            "layer 1 has the unknown activation 'swish'", "relu")
    refused(edit("newer.npz", lambda m: m.update(version=3)), "format version 3", "newer pynet", "upgrade")
    refused(edit("fmt.npz", lambda m: m.update(format="keras")), "format is 'keras'")
    refused(edit("chain.npz", lambda m: m["layers"][1].update(inputs=7)), "layer 0 outputs 5 values but layer 1 takes 7")
    refused(edit("labels.npz", lambda m: m.update(labels=["a", "b"])), "names 2 classes but the last layer has 3")
    refused(edit("drop.npz", lambda m: m["layers"][0].update(dropout=1.5)), "dropout", "[0, 1)")
    refused(edit("bias.npz", lambda m: m["layers"][0].update(bias="yes")), "'bias' of layer 0 should be bool")
    refused(edit("nolayers.npz", lambda m: m.update(layers=[])), "no layers")
    refused(edit("size.npz", lambda m: m["layers"][0].pop("inputs")), "lacks 'inputs' of layer 0")
    with zipfile.ZipFile(saved) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(b"{not json", np.uint8))
    entries["metadata.npy"] = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "json.npz", "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)
    refused(tmp_path / "json.npz", "not valid UTF-8 JSON")


def test_deeply_nested_metadata_is_a_model_file_error(tmp_path, saved):
    # Python's JSON parser raises RecursionError on deep nesting: it must not escape load_model.
    with zipfile.ZipFile(saved) as z:
        entries = {n: z.read(n) for n in z.namelist()}
    buf = io.BytesIO()
    np.save(buf, np.frombuffer(b"[" * 200_000, np.uint8))
    entries["metadata.npy"] = buf.getvalue()
    with zipfile.ZipFile(tmp_path / "deep.npz", "w") as z:
        for n, data in entries.items():
            z.writestr(n, data)
    refused(tmp_path / "deep.npz", "metadata", "nested too deeply")


def test_info_nested_too_deeply_for_json_is_a_value_error(tmp_path):
    m = sample_model()
    deep = []
    for _ in range(5000):
        deep = [deep]
    m.info = {"deep": deep}
    with pytest.raises(ValueError, match="save_model: info cannot be stored as JSON.*nested too deeply"):
        save_model(m, tmp_path / "deep.npz")
    assert not os.listdir(tmp_path)   # nothing written
