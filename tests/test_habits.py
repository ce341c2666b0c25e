"""The habits of scikit-learn users (issue 14, section 3): fit(m, X, y) with arrays and any labels,
an (n, 1) column of labels, a warning for raw 0-255 pixels, prediction that applies a loaded
model's standardiser, and ImageFolder-style class folders."""
import warnings

import numpy as np
import pytest

import pynet


def _blobs(n=300, seed=0):
    """Three well separated Gaussian blobs in 4-D and their integer labels."""
    rng = np.random.default_rng(seed)
    centres = np.array([[3, 0, 0, 0], [0, 3, 0, 0], [0, 0, 3, 0]], dtype=float)
    y = rng.integers(0, 3, n)
    return centres[y] + rng.normal(0, 0.5, (n, 4)), y


def _model(seed=1, inputs=4):
    pynet.set_seed(seed)
    return pynet.make_model([pynet.make_layer(inputs, 16, "relu", bias=True),
                             pynet.make_layer(16, 3, "softmax", bias=True)])


def _train_kw():
    return dict(epochs=30, batch=32, optimizer="adam", rate=0.01, progress=False)


def test_fit_with_arrays_trains_as_fit_with_a_data():
    X, y = _blobs()
    m1, m2 = _model(), _model()
    pynet.set_seed(5)
    h1 = pynet.fit(m1, pynet.make_data(X, y), **_train_kw())
    pynet.set_seed(5)
    h2 = pynet.fit(m2, X, y, **_train_kw())
    np.testing.assert_array_equal(h1.losses, h2.losses)
    np.testing.assert_array_equal(m1.layers[0].w.data, m2.layers[0].w.data)
    assert pynet.accuracy_model(m2, pynet.make_data(X, y)) > 0.95
    assert m2.labels is None   # integer labels are class indices: no names invented


def test_fit_with_one_hot_and_column_labels_matches_integer_labels():
    X, y = _blobs()
    results = []
    for labels in (y, np.eye(3)[y], y.reshape(-1, 1)):
        m = _model()
        pynet.set_seed(5)
        results.append(pynet.fit(m, X, labels, **_train_kw()).losses)
    np.testing.assert_array_equal(results[0], results[1])
    np.testing.assert_array_equal(results[0], results[2])


def test_fit_with_string_labels_uses_sorted_unique_class_order():
    X, y = _blobs()
    names = np.array(["zebra", "ant", "moose"])[y]        # unsorted on purpose
    m = _model()
    pynet.fit(m, X, names, **_train_kw())
    assert m.labels == ["ant", "moose", "zebra"]
    predicted = np.array(m.labels)[pynet.predict(m, X)]
    assert np.mean(predicted == names) > 0.95
    assert pynet.score(m, X, names) == pytest.approx(np.mean(predicted == names))
    with pytest.raises(ValueError, match="'yak'.*not among the model's 3 labels"):
        pynet.score(m, X[:2], ["ant", "yak"])


def test_fit_with_arrays_refuses_mismatches_clearly():
    X, y = _blobs()
    m = _model()
    with pytest.raises(ValueError, match="2 distinct class names .* 3 classes"):
        pynet.fit(m, X, np.where(y == 0, "a", "b"), **_train_kw())
    with pytest.raises(ValueError, match="non-integer"):
        pynet.fit(m, X, y + 0.5, **_train_kw())
    with pytest.raises(TypeError, match="not a Data and y"):
        pynet.fit(m, pynet.make_data(X, y), y, **_train_kw())
    with pytest.raises(TypeError, match="Data"):
        pynet.fit(m, X, **_train_kw())


def test_predict_takes_a_single_1d_sample():
    X, y = _blobs()
    m = _model()
    pynet.fit(m, X, y, **_train_kw())
    assert pynet.predict(m, X[7]).tolist() == [pynet.predict(m, X)[7]]
    np.testing.assert_allclose(pynet.predict_proba(m, X[7])[0], pynet.predict_model(m, X[7:8]).data[0])


def test_make_data_reads_a_column_of_labels_as_labels():
    X = np.zeros((4, 2))
    d = pynet.make_data(X, np.array([2, 0, 1, 2]).reshape(-1, 1))
    np.testing.assert_array_equal(d.y.data, np.eye(3)[[2, 0, 1, 2]])
    d = pynet.make_data(X, np.array([[1.0], [0.0], [1.0], [1.0]]), classes=2)
    np.testing.assert_array_equal(d.classes, [1, 0, 1, 1])
    with pytest.raises(ValueError, match="label 2 does not fit 2 classes"):
        pynet.make_data(X, np.array([[2], [0], [1], [0]]), classes=2)


@pytest.mark.parametrize("kind", ["uint8", "float_whole", "int64"])
def test_raw_pixels_get_a_warning_that_says_what_to_do(kind):
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (20, 16))
    pixels[0, 0] = 255
    X = {"uint8": pixels.astype(np.uint8), "float_whole": pixels.astype(float), "int64": pixels}[kind]
    with pytest.warns(UserWarning, match=r"^make_data: .*raw 0-255 pixels.*Divide X by 255 \(X / 255.0\), or "
                                         r"standardise the float64 X .*pynet\.Standardizer\.fit\(X, "
                                         r"per_feature=False\)\.apply\(X\)") as rec:
        pynet.make_data(X, np.arange(20) % 2)
    with warnings.catch_warnings():   # the advice works as written, and silences the warning
        warnings.simplefilter("error", UserWarning)
        pynet.make_data(X / 255.0, np.arange(20) % 2)
        scaled = X.astype(np.float64)
        pynet.Standardizer.fit(scaled, per_feature=False).apply(scaled)
        pynet.make_data(scaled, np.arange(20) % 2)
    assert "up to 255" in str(rec[0].message) or "to 255" in str(rec[0].message)
    m = _model(inputs=16)
    with pytest.warns(UserWarning, match="raw 0-255 pixels"):
        pynet.fit(m, X, np.arange(20) % 3, epochs=1, batch=10, progress=False)


def test_no_pixel_warning_where_it_would_be_false():
    rng = np.random.default_rng(0)
    pixels = rng.integers(0, 256, (200, 16)).astype(float)
    cases = {
        "scaled to [0, 1]": pixels / 255,
        "standardised": (pixels - pixels.mean()) / pixels.std(),
        "negative whole numbers": pixels - 128,
        "binary uint8": (pixels > 128).astype(np.uint8),
        "counts above 255": pixels * 10,
        "small whole numbers": pixels % 20,
        "real-valued in [0, 255]": pixels + 0.5,
    }
    for name, X in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            pynet.make_data(X, np.arange(200) % 2)   # no warning raised as an error


def test_a_loaded_models_standardizer_is_applied_by_predict_and_score_not_by_the_homework_calls(tmp_path):
    X, y = _blobs(400)
    X = X * [40, 5, 90, 1] + [100, -300, 50, 700]   # a model trained on standardised X is lost on this
    std = pynet.Standardizer.fit(X)
    Xs = X.copy()
    std.apply(Xs)
    m = _model()
    m.standardizer = std
    pynet.fit(m, Xs, y, **_train_kw())
    before = pynet.accuracy_model(m, pynet.make_data(Xs, y))
    assert before > 0.95
    assert pynet.score(m, X, y) == before                 # score standardises the raw X itself
    pynet.save_model(m, tmp_path / "m.npz")
    m2 = pynet.load_model(tmp_path / "m.npz")
    assert m2.standardizer is not None
    assert pynet.score(m2, X, y) == before
    np.testing.assert_array_equal(pynet.predict_proba(m2, X), pynet.predict_model(m, Xs).data)
    np.testing.assert_array_equal(pynet.predict(m2, pynet.make_data(X, y)), np.argmax(pynet.predict_model(m, Xs).data, 1))
    # the homework's calls are raw: on unstandardised X the loaded model does much worse
    raw = pynet.accuracy_model(m2, pynet.make_data(X, y))
    assert raw < before - 0.2
    np.testing.assert_array_equal(pynet.predict_model(m2, X).data, pynet.predict_model(m, X).data)
    X_copy = X.copy()
    pynet.predict(m2, X)
    np.testing.assert_array_equal(X, X_copy)


def _write_tree(root, classes=("cat", "dog", "owl"), per_class=4, size=6, seed=0):
    """root/<class>/<i>.png: greyscale images whose brightness says the class; returns the pixels."""
    from PIL import Image
    rng = np.random.default_rng(seed)
    written = {}
    for k, name in enumerate(classes):
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            img = np.clip(rng.normal(40 + 80 * k, 10, (size, size)), 0, 255).astype(np.uint8)
            Image.fromarray(img, mode="L").save(root / name / ("%d.png" % i))
            written[(name, i)] = img
    return written


def test_load_image_folder_reads_class_folders_with_sorted_class_names(tmp_path):
    root = tmp_path / "animals"
    written = _write_tree(root, classes=("owl", "cat", "dog"))
    (root / "cat" / "notes.txt").write_text("not an image")
    (root / ".hidden").mkdir()
    d = pynet.datasets.load_image_folder(root, cache=False)
    assert d.labels == ["cat", "dog", "owl"]
    assert d.X.shape == (12, 36) and d.y.shape == (12, 3)
    np.testing.assert_array_equal(d.classes, np.repeat([0, 1, 2], 4))
    np.testing.assert_allclose(d.X.data[5], written[("dog", 1)].reshape(-1) / 255)
    again = pynet.datasets.load(root, "train")          # the folder as a dataset name, as the CLI uses it
    np.testing.assert_array_equal(again.X.data, d.X.data)
    assert again.labels == d.labels
    with pytest.raises(FileNotFoundError, match="no test split.*train/<class>"):
        pynet.datasets.load(root, "test")


def test_load_image_folder_with_train_and_test_splits(tmp_path):
    _write_tree(tmp_path / "train", per_class=3)
    _write_tree(tmp_path / "test", per_class=2, seed=1)
    assert len(pynet.datasets.load(tmp_path, "train")) == 9
    test = pynet.datasets.load(tmp_path, "test")
    assert len(test) == 6 and test.labels == ["cat", "dog", "owl"]


def test_load_image_folder_errors_name_the_folder(tmp_path):
    with pytest.raises(FileNotFoundError, match="image folder not found"):
        pynet.datasets.load_image_folder(tmp_path / "nope")
    (tmp_path / "empty" / "a").mkdir(parents=True)
    with pytest.raises(FileNotFoundError, match="holds no class folders.*<class>/<image>.png"):
        pynet.datasets.load_image_folder(tmp_path / "empty")
    from PIL import Image
    _write_tree(tmp_path / "mixed", per_class=1)
    Image.fromarray(np.zeros((3, 3), np.uint8)).save(tmp_path / "mixed" / "dog" / "small.png")
    with pytest.raises(ValueError, match="small.png is 3x3.*same size"):
        pynet.datasets.load_image_folder(tmp_path / "mixed", cache=False)


def test_cli_trains_on_a_folder_of_class_folders(tmp_path):
    import subprocess
    import sys
    _write_tree(tmp_path / "data", per_class=20)
    out = tmp_path / "m.npz"
    r = subprocess.run([sys.executable, "-m", "pynet", "train", "--data", str(tmp_path / "data"), "--layers",
                        "auto,8,auto", "--epochs", "30", "--batch", "10", "--optimizer", "adam", "--rate", "0.05",
                        "--out", str(out)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    assert "60 training examples" in r.stderr or "54 training examples" in r.stderr, r.stderr
    m = pynet.load_model(out)
    assert m.labels == ["cat", "dog", "owl"]
    d = pynet.datasets.load_image_folder(tmp_path / "data", cache=False)
    assert pynet.score(m, d) > 0.9                        # applies the saved standardizer


def _write_list(tmp_path, names, files):
    from PIL import Image
    for f in files:
        Image.fromarray(np.zeros((2, 2), np.uint8)).save(tmp_path / f)
    (tmp_path / "x.labels").write_text("\n".join(names) + "\n")
    (tmp_path / "x.train").write_text("\n".join(str(tmp_path / f) for f in files) + "\n")
    return pynet.datasets.load_image_classification_data(tmp_path / "x.train", tmp_path / "x.labels", cache=False)


def test_list_labels_match_whole_tokens_so_bare_digit_labels_work(tmp_path):
    names = [str(i) for i in range(12)]
    files = ["17_3.png", "21_1.png", "5_11.png", "100_10.png", "3-0.png"]
    d = _write_list(tmp_path, names, files)
    assert d.classes.tolist() == [3, 1, 11, 10, 0]


def test_list_labels_do_not_match_inside_longer_words(tmp_path):
    d = _write_list(tmp_path, ["cat", "category"], ["1_category.png", "2_cat.png", "cat.3.png"])
    assert d.classes.tolist() == [1, 0, 0]
    from pynet.datasets import DataFileError
    with pytest.raises(DataFileError, match="'4_catalog.png' contains none of.*whole word"):
        _write_list(tmp_path, ["cat", "category"], ["4_catalog.png"])
