"""The command line end to end, as a user runs it (``python -m pynet ...`` in a subprocess): train on
real MNIST with a small budget, evaluate, predict PNGs, and the one-line errors for bad input.
Results are checked against the Python API and an independent NumPy forward pass of the saved
weights, never against numbers the CLI printed alone."""
import csv
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pynet
from pynet import datasets

REPO = Path(__file__).resolve().parents[1]


def run(*args, cwd=None):
    env = dict(os.environ, PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""),
               PYNET_PROGRESS="1")
    return subprocess.run([sys.executable, "-m", "pynet", *map(str, args)], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


def assert_one_line_error(r, *fragments, status=1):
    assert r.returncode == status, (r.returncode, r.stdout, r.stderr)
    assert "Traceback" not in r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, r.stderr
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def numpy_predict(path, X):
    """Class probabilities from the saved file's arrays alone, with NumPy (standardizer applied)."""
    with np.load(path, allow_pickle=False) as z:
        meta = json.loads(z["metadata"].tobytes())
        arrays = {k: z[k] for k in z.files}
    if meta["standardizer"]:
        X = (X - arrays["standardizer_mean"]) / arrays["standardizer_std"]
    for i, spec in enumerate(meta["layers"]):
        X = X @ arrays["w%d" % i] + (arrays["b%d" % i] if spec["bias"] else 0)
        if spec["activation"] == "relu":
            X = np.maximum(X, 0)
        elif spec["activation"] == "softmax":
            X = np.exp(X - X.max(axis=1, keepdims=True))
            X /= X.sum(axis=1, keepdims=True)
        else:
            raise AssertionError(spec["activation"])
    return X


TRAIN = ["train", "--data", "mnist", "--subset", "3000", "--layers", "auto,48,auto", "--activation", "relu",
         "--epochs", "3", "--batch", "32", "--optimizer", "sgd", "--rate", "0.05", "--schedule", "cosine",
         "--warmup", "1", "--input-dropout", "0.1", "--dropout", "0.2", "--validation", "0.1", "--seed", "7",
         "--threads", "1"]


@pytest.fixture(scope="module")
def trained(mnist_root, tmp_path_factory):
    """One small training run on real MNIST, shared by the tests below."""
    folder = tmp_path_factory.mktemp("cli")
    model, log = folder / "model.npz", folder / "history.csv"
    r = run(*TRAIN, "--root", mnist_root, "--test", "--out", model, "--log", log)
    assert r.returncode == 0, r.stderr
    return {"root": mnist_root, "model": model, "log": log, "result": r, "folder": folder}


def test_train_reports_every_epoch_and_saves_a_model_with_its_history(trained):
    r = trained["result"]
    epochs = re.findall(r"^epoch (\d)/3 .*loss [\d.]+ .*train acc [\d.]+% .*val acc ([\d.]+)% .*\d+\.\ds$",
                        r.stderr, flags=re.M)
    assert [e[0] for e in epochs] == ["1", "2", "3"]
    assert "2700 training examples + 300 held out for validation" in r.stderr
    assert re.search(r"^best epoch \d of 3: validation accuracy [\d.]+%", r.stdout, flags=re.M)
    assert re.search(r"^test accuracy [\d.]+% \(loss [\d.]+\) on mnist's test split$", r.stdout, flags=re.M)
    assert re.search(r"^time: .* total \(data .*, training .*\)$", r.stdout, flags=re.M)

    m = pynet.load_model(trained["model"])
    assert [l.inputs for l in m.layers] + [m.layers[-1].outputs] == [784, 48, 10]
    assert [l.dropout for l in m.layers] == [0.1, 0.2]
    assert all(l.b is not None for l in m.layers)
    assert m.labels == ["num%d" % i for i in range(10)]
    assert m.info["data"]["image_shape"] == [28, 28, 1]
    assert m.info["train"]["rate"] == 0.05 and len(m.info["history"]) == 3
    with open(trained["log"]) as f:
        rows = list(csv.DictReader(f))
    assert [int(row["epoch"]) for row in rows] == [1, 2, 3]
    assert [float(row["val_accuracy"]) for row in rows] == [h["val_accuracy"] for h in m.info["history"]]
    # the reported best epoch is the one with the highest validation accuracy
    best = m.info["result"]["best_epoch"]
    assert rows[best - 1]["val_accuracy"] == max(rows, key=lambda row: float(row["val_accuracy"]))["val_accuracy"]


def test_the_test_accuracy_train_reports_is_the_saved_models(trained):
    test = datasets.load("mnist", "test", root=trained["root"])
    p = numpy_predict(trained["model"], test.X.data)
    accuracy = np.mean(np.argmax(p, 1) == test.classes)
    reported = float(re.search(r"test accuracy ([\d.]+)%", trained["result"].stdout).group(1))
    assert reported == pytest.approx(100 * accuracy, abs=0.005)
    assert accuracy > 0.8   # 3 small epochs on 2,700 digits: it learnt something


def test_eval_matches_a_numpy_forward_pass_and_counts_per_class(trained):
    r = run("eval", trained["model"], "--root", trained["root"], "--subset", "2000", "--json", "--confusion")
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    test = datasets.load("mnist", "test", root=trained["root"])
    X, truth = test.X.data[:2000], test.classes[:2000]
    p = numpy_predict(trained["model"], X)
    assert out["examples"] == 2000
    assert out["accuracy"] == pytest.approx(np.mean(np.argmax(p, 1) == truth), abs=1e-12)
    assert out["loss"] == pytest.approx(np.mean(-np.log(p[np.arange(2000), truth])), rel=1e-9)
    confusion = np.array(out["confusion"])
    assert confusion.sum() == 2000 and np.trace(confusion) == round(out["accuracy"] * 2000)
    for i, c in enumerate(out["per_class"]):
        assert c["class"] == "num%d" % i and c["examples"] == np.sum(truth == i)
        assert c["correct"] == np.sum((truth == i) & (np.argmax(p, 1) == i))

    text = run("eval", trained["model"], "--root", trained["root"], "--subset", "2000", "--confusion")
    assert text.returncode == 0, text.stderr
    assert "accuracy %.2f%%" % (100 * out["accuracy"]) in text.stdout
    assert len(re.findall(r"^num\d ", text.stdout, flags=re.M)) == 20   # per-class table + confusion rows


def test_predict_classifies_png_images(trained):
    from PIL import Image
    test = datasets.load("mnist", "test", root=trained["root"])
    paths = []
    for i in range(5):
        pixels = np.round(test.X.data[i].reshape(28, 28) * 255).astype(np.uint8)
        paths.append(trained["folder"] / ("digit%d.png" % i))
        Image.fromarray(pixels).save(paths[-1])
    r = run("predict", trained["model"], *paths, "--json", "--top", "3")
    assert r.returncode == 0, r.stderr
    answers = [json.loads(line) for line in r.stdout.splitlines()]
    p = numpy_predict(trained["model"], test.X.data[:5])
    for i, a in enumerate(answers):
        assert a["image"] == str(paths[i]) and len(a["predictions"]) == 3
        assert a["predictions"][0]["class"] == "num%d" % np.argmax(p[i])
        assert a["predictions"][0]["probability"] == pytest.approx(p[i].max(), rel=1e-9)
    plain = run("predict", trained["model"], paths[0])
    assert plain.returncode == 0
    best = p[0].max()
    assert plain.stdout.strip() == "%s: num%d (%s)" % (paths[0], np.argmax(p[0]), "%.4f" % best if best >= 1e-4 else "%.1e" % best)
    assert re.fullmatch(r"\S+: num\d \(\S+\), num\d \(\S+\)", run("predict", trained["model"], paths[0], "--top", "2").stdout.strip())


def test_predict_refuses_images_that_do_not_fit_the_model(trained):
    from PIL import Image
    folder = trained["folder"]
    Image.fromarray(np.zeros((32, 28), np.uint8)).save(folder / "tall.png")
    Image.fromarray(np.zeros((28, 28, 3), np.uint8)).save(folder / "colour.png")
    (folder / "notes.png").write_text("not an image")
    assert_one_line_error(run("predict", trained["model"], folder / "tall.png"),
                          "tall.png is 28x32 pixels", "takes 28x28 images")
    assert_one_line_error(run("predict", trained["model"], folder / "colour.png"),
                          "colour.png has 3 channels (RGB)", "greyscale")
    assert_one_line_error(run("predict", trained["model"], folder / "notes.png"), "notes.png", "not an image")
    assert_one_line_error(run("predict", trained["model"], folder / "absent.png"), "image not found", "absent.png")


def test_the_same_seed_gives_the_same_model(trained, tmp_path):
    r = run(*TRAIN, "--root", trained["root"], "--out", tmp_path / "again.npz", "--quiet")
    assert r.returncode == 0, r.stderr
    assert r.stderr == ""   # --quiet
    a, b = pynet.load_model(trained["model"]), pynet.load_model(tmp_path / "again.npz")
    for la, lb in zip(a.layers, b.layers):
        np.testing.assert_array_equal(la.w.data, lb.w.data)


def test_bad_input_gives_a_one_line_error(mnist_root, tmp_path):
    small = ["--subset", "500", "--epochs", "1", "--root", mnist_root]
    assert_one_line_error(run("train", "--data", "imagenet", "--epochs", "1"), "unknown dataset 'imagenet'")
    assert_one_line_error(run("train", "--layers", "100,32,10", *small),
                          "--layers starts with 100 inputs but mnist has 784 features")
    assert_one_line_error(run("train", "--layers", "auto,32,7", *small), "ends with 7 outputs", "10 classes")
    assert_one_line_error(run("train", "--out", tmp_path / "missing" / "m.npz", *small),
                          "cannot write --out", "does not exist")
    assert_one_line_error(run("train", "--patience", "2", "--validation", "0", *small), "--patience needs")
    assert_one_line_error(run("train", "--schedule", "step", *small), "--step-size")
    assert_one_line_error(run("train", "--layers", "784,ten,10"), "--layers", "'ten'", status=2)
    assert_one_line_error(run("train", "--dropout", "1"), "--dropout", "[0, 1)", status=2)
    assert_one_line_error(run("train", "--optimizer", "rmsprop"), "--optimizer", "rmsprop", status=2)
    assert_one_line_error(run("eval", tmp_path / "none.npz"), "model file not found", "none.npz")
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 truncated")
    assert_one_line_error(run("eval", tmp_path / "junk.npz"), "junk.npz", "corrupt or truncated")
    assert_one_line_error(run("predict", tmp_path / "none.npz", "x.png"), "model file not found")


def test_help_explains_every_option():
    for command, options in {
        "train": ["--data", "--root", "--subset", "--standardize", "--validation", "--layers", "--activation",
                  "--bias", "--dropout", "--input-dropout", "--epochs", "--batch", "--optimizer", "--rate",
                  "--momentum", "--decay", "--beta1", "--beta2", "--eps", "--schedule", "--warmup", "--step-size",
                  "--gamma", "--min-rate", "--clip", "--patience", "--seed", "--threads", "--test", "--out",
                  "--log", "--quiet"],
        "eval": ["--data", "--root", "--split", "--subset", "--confusion", "--threads", "--json"],
        "predict": ["--top", "--json", "IMAGE"],
    }.items():
        r = run(command, "--help")
        assert r.returncode == 0
        for option in options:
            # each option is listed with a help text on its line or the next
            assert re.search(r"^  %s\b.*\n?.*\w" % re.escape(option), r.stdout, flags=re.M), (command, option)
    r = run("--help")
    assert r.returncode == 0 and all(c in r.stdout for c in ("train", "eval", "predict"))


def test_predict_reads_rgb_images_channel_planar_like_the_cifar_loader(tmp_path):
    """A CIFAR-10-shaped model (no dataset needed): the PNG's interleaved RGB pixels must reach the
    model as the loader lays out CIFAR rows — all red, then all green, then all blue, / 255."""
    from PIL import Image
    pynet.set_seed(3)
    m = pynet.make_model([pynet.make_layer(3072, 4, "softmax", bias=True)])
    m.labels = ["a", "b", "c", "d"]
    m.info = {"data": {"name": "cifar10", "image_shape": [32, 32, 3]}}
    pynet.save_model(m, tmp_path / "rgb.npz")
    rng = np.random.default_rng(4)
    pixels = rng.integers(0, 256, (32, 32, 3), dtype=np.uint8)
    Image.fromarray(pixels).save(tmp_path / "x.png")
    r = run("predict", tmp_path / "rgb.npz", tmp_path / "x.png", "--json", "--top", "4")
    assert r.returncode == 0, r.stderr
    got = {p["class"]: p["probability"] for p in json.loads(r.stdout)["predictions"]}
    planar = pixels.transpose(2, 0, 1).reshape(1, -1) / 255.0
    expected = numpy_predict(tmp_path / "rgb.npz", planar)[0]
    for k, name in enumerate(m.labels):
        assert got[name] == pytest.approx(expected[k], rel=1e-12)
    Image.fromarray(pixels[:, :, 0]).save(tmp_path / "grey.png")
    assert_one_line_error(run("predict", tmp_path / "rgb.npz", tmp_path / "grey.png"),
                          "has 1 channel (greyscale) but the model takes RGB images")


def test_eval_needs_data_for_a_model_that_does_not_name_it(tmp_path):
    pynet.save_model(pynet.make_model([pynet.make_layer(784, 10, "softmax")]), tmp_path / "bare.npz")
    assert_one_line_error(run("eval", tmp_path / "bare.npz"), "does not say which data", "--data")


@pytest.mark.parametrize("info", [{"data": "mnist"}, {"data": {"image_shape": 5}},
                                  {"data": {"image_shape": [1, 1, 784]}}, {"data": {"image_shape": ["a", 2, 3]}}],
                         ids=["data-str", "shape-int", "shape-784-channels", "shape-str"])
def test_predict_with_odd_model_info_is_a_one_line_error_or_works(tmp_path, info):
    """Issue 10 item 9: info that is not what pynet writes falls back to the model's input size."""
    from PIL import Image
    m = pynet.make_model([pynet.make_layer(784, 10, "softmax")])
    m.info = info
    pynet.save_model(m, tmp_path / "odd.npz")
    Image.fromarray(np.zeros((28, 28), np.uint8)).save(tmp_path / "x.png")
    r = run("predict", tmp_path / "odd.npz", tmp_path / "x.png")
    assert "Traceback" not in r.stderr, r.stderr
    assert r.returncode == 0, r.stderr


def test_train_with_layer_norm_normalises_the_hidden_layers_and_eval_agrees_with_numpy(mnist_root, tmp_path):
    model = tmp_path / "norm.npz"
    r = run("train", "--data", "mnist", "--subset", "1000", "--layers", "auto,24,auto", "--epochs", "1",
            "--layer-norm", "--seed", "3", "--threads", "1", "--validation", "0", "--root", mnist_root,
            "--out", model)
    assert r.returncode == 0, r.stderr
    assert "layer norm" in r.stderr + r.stdout
    with np.load(model, allow_pickle=False) as z:
        meta = json.loads(z["metadata"].tobytes())
        arrays = {k: z[k] for k in z.files}
    assert [s["norm"] for s in meta["layers"]] == [True, False]
    assert arrays["gain0"].shape == (24,) and not np.all(arrays["gain0"] == 1)   # trained
    m = pynet.load_model(model)
    X = np.random.default_rng(0).random((5, 784))
    Xs = (X - m.standardizer.mean) / m.standardizer.std
    z = Xs @ arrays["w0"] + arrays["b0"]
    z = (z - z.mean(1, keepdims=True)) / np.sqrt(z.var(1, keepdims=True) + 1e-5) * arrays["gain0"] + arrays["shift0"]
    h = np.maximum(z, 0) @ arrays["w1"] + arrays["b1"]
    p = np.exp(h - h.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    np.testing.assert_allclose(pynet.predict_model(m, Xs).data, p, rtol=1e-9, atol=1e-12)
def test_train_diagnostics_are_printed_and_saved_and_change_no_weight(trained, tmp_path):
    model = tmp_path / "diag.npz"
    r = run(*TRAIN, "--root", trained["root"], "--test", "--out", model, "--diagnostics", "5")
    assert r.returncode == 0, r.stderr
    with np.load(model, allow_pickle=False) as z, np.load(trained["model"], allow_pickle=False) as z0:
        meta = json.loads(z["metadata"].tobytes())
        for name in z0.files:
            if name != "metadata":
                assert np.array_equal(z[name], z0[name]), name
    diag = meta["info"]["diagnostics"]
    steps = 3 * (2700 // 32)   # 3000 examples less 10% for validation, batch 32
    assert diag["every"] == 5 and diag["step"] == list(range(5, steps + 1, 5))
    assert diag["activations"] == ["RELU", "SOFTMAX"] and diag["dead"][1] is None
    line = [l for l in r.stdout.splitlines() if l.startswith("diagnostics at step")]
    assert len(line) == 1 and line[0].startswith("diagnostics at step %d (recorded every 5 steps)" % diag["step"][-1])
    assert "gradient norm %.3g" % diag["grad_norm"][0][-1] in line[0]
    assert "dead %.1f%%" % (100 * diag["dead"][0][-1]) in line[0]
    bad = run("train", "--diagnostics", "0")
    assert bad.returncode == 2 and "--diagnostics" in bad.stderr and "an integer >= 1" in bad.stderr
