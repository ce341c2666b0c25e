"""python -m pynet eval and predict: a saved model on a dataset split, or on image files."""
import json

import numpy as np

from .common import CLIError, _load_data, _set_threads
from ..datasets import CHANNELS, image_shape as _image_shape, read_image


def _model_data_name(m, given, model_path):
    if given is not None:
        return given
    name = _model_data(m).get("name")
    if not isinstance(name, str) or not name:
        raise CLIError("%s does not say which data it was trained on; pass --data" % model_path)
    return name


def _check_fit(m, d, model_path, data):
    if d.X.cols != m.layers[0].inputs:
        raise CLIError("%s takes %d features per example but %s has %d" % (model_path, m.layers[0].inputs, data, d.X.cols))
    if d.y.cols != m.layers[-1].outputs:
        raise CLIError("%s predicts %d classes but %s has %d" % (model_path, m.layers[-1].outputs, data, d.y.cols))
    if m.labels is not None and d.labels is not None and list(m.labels) != list(d.labels):
        raise CLIError("%s was trained on the classes %s but %s has %s"
                       % (model_path, ", ".join(m.labels), data, ", ".join(d.labels)))


def cmd_eval(a):
    import pynet
    _set_threads(a.threads)
    m = pynet.load_model(a.model)
    data = _model_data_name(m, a.data, a.model)
    d, _ = _load_data(data, a.split, a.root, a.subset)
    _check_fit(m, d, a.model, data)
    if m.standardizer is not None:
        m.standardizer.apply(d)
    r = pynet.evaluate_classes(m, d)
    loss, accuracy, confusion, per_class = r["loss"], r["accuracy"], r["confusion"], r["per_class"]
    names, k = [c["class"] for c in per_class], d.y.cols
    if a.json:
        out = {"model": a.model, "data": str(data), "split": a.split, "examples": len(d), "loss": loss,
               "accuracy": accuracy, "per_class": per_class}
        if a.confusion:
            out["confusion"] = confusion.tolist()
        print(json.dumps(out))
        return 0
    print("%s on %s %s (%d examples): accuracy %.2f%%, loss %.4f" % (a.model, data, a.split, len(d), 100 * accuracy, loss))
    width = max(5, max(len(n) for n in names))
    print("%-*s  %8s  %8s  %8s" % (width, "class", "examples", "correct", "accuracy"))
    for c in per_class:
        acc = "-" if c["accuracy"] is None else "%.2f%%" % (100 * c["accuracy"])
        print("%-*s  %8d  %8d  %8s" % (width, c["class"], c["examples"], c["correct"], acc))
    if a.confusion:
        print("\nconfusion matrix (rows: true class, columns: predicted class)")
        col = max(5, len(str(confusion.max())) + 1, max(len(n) for n in names) + 1)
        short = [n[:col - 1] for n in names]
        print(" " * width + "".join("%*s" % (col, n) for n in short))
        for i in range(k):
            print("%-*s" % (width, names[i]) + "".join("%*d" % (col, v) for v in confusion[i]))
    return 0


# ---- predict -------------------------------------------------------------------------------------

def _model_data(m):
    """The model's info["data"] if it is the dict pynet writes, else {} (a hand-edited info)."""
    data = m.info.get("data") if isinstance(m.info, dict) else None
    return data if isinstance(data, dict) else {}


def _model_image_shape(m, model_path):
    shape = _model_data(m).get("image_shape")
    if not (isinstance(shape, list) and len(shape) == 3 and all(type(v) is int and v >= 1 for v in shape)
            and shape[2] in CHANNELS and shape[0] * shape[1] * shape[2] == m.layers[0].inputs):
        shape = _image_shape(m.layers[0].inputs, None)   # what pynet writes is not there: guess from the size
    if shape is None or len(shape) != 3 or shape[0] * shape[1] * shape[2] != m.layers[0].inputs:
        raise CLIError("%s takes %d inputs, which is not a square greyscale or RGB image, and it does not say "
                       "what images it was trained on" % (model_path, m.layers[0].inputs))
    return tuple(int(s) for s in shape)


def _read_image(path, shape):
    try:
        return read_image(path, shape)
    except (FileNotFoundError, IsADirectoryError, ValueError) as e:
        raise CLIError(str(e)) from None


def _probability(p):
    """Four decimals, or two significant digits for the tiny probabilities of unlikely classes."""
    return "%.4f" % p if p >= 1e-4 else "%.1e" % p


def cmd_predict(a):
    import pynet
    m = pynet.load_model(a.model)
    shape = _model_image_shape(m, a.model)
    X = np.concatenate([_read_image(path, shape) for path in a.images])
    if m.standardizer is not None:
        m.standardizer.apply(X)
    p = pynet.predict_model(m, X).data
    names = list(m.labels or [str(i) for i in range(p.shape[1])])
    top = min(a.top, p.shape[1])
    for path, row in zip(a.images, p):
        best = np.argsort(-row, kind="stable")[:top]
        if a.json:
            print(json.dumps({"image": path, "predictions": [{"class": names[i], "probability": float(row[i])}
                                                              for i in best]}))
        else:
            print("%s: %s" % (path, ", ".join("%s (%s)" % (names[i], _probability(row[i])) for i in best)))
    return 0
