"""pynet.evaluate: the confusion matrix and per-class accuracy agree with the predictions and with
evaluate_model's accuracy."""
import numpy as np
import pytest

import pynet


def _model_and_data():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(60, 4))
    y = rng.integers(0, 3, size=60)
    pynet.set_seed(5)
    m = pynet.make_model([pynet.make_layer(4, 6, "relu", bias=True), pynet.make_layer(6, 3, "softmax")])
    return m, pynet.make_data(X, y, classes=3, labels=["a", "b", "c"])


def test_confusion_and_per_class_match_the_predictions():
    m, d = _model_and_data()
    predicted = np.argmax(pynet.predict_model(m, d.X).data, axis=1)
    expected = np.zeros((3, 3), dtype=np.int64)
    for t, p in zip(d.classes, predicted):
        expected[t, p] += 1
    r = pynet.evaluate_classes(m, d)
    assert np.array_equal(r["confusion"], expected) and np.array_equal(pynet.confusion_matrix(m, d), expected)
    assert (r["loss"], r["accuracy"]) == pynet.evaluate_model(m, d)
    assert r["accuracy"] == pytest.approx(np.trace(expected) / 60)
    assert [c["class"] for c in r["per_class"]] == ["a", "b", "c"]
    for i, c in enumerate(r["per_class"]):
        assert c["examples"] == int(np.sum(d.classes == i)) and c["correct"] == expected[i, i]
        assert c["accuracy"] == pytest.approx(expected[i, i] / expected[i].sum())


def test_a_class_without_examples_has_no_accuracy():
    rows = pynet.per_class_accuracy(np.array([[2, 1], [0, 0]]), ["x", "y"])
    assert rows == [{"class": "x", "examples": 3, "correct": 2, "accuracy": 2 / 3},
                    {"class": "y", "examples": 0, "correct": 0, "accuracy": None}]
    assert pynet.per_class_accuracy(np.eye(2, dtype=int))[1]["class"] == "1"


def test_evaluate_names_what_it_got():
    m, d = _model_and_data()
    with pytest.raises(TypeError, match="Data"):
        pynet.confusion_matrix(m, d.X)
    with pytest.raises(TypeError, match="Model"):
        pynet.evaluate_classes("model", d)
