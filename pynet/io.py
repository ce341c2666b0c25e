"""pynet.io — saving and loading models: ``save_model(m, path)`` and ``load_model(path)``.

A model file is a NumPy ``.npz`` archive (a zip of ``.npy`` arrays, deflate-compressed) that never
holds a pickle: it is read with ``allow_pickle=False`` semantics, every entry is checked before it
is used, so loading a file from an untrusted source cannot run code — at worst it is refused with
a ValueError naming the file and what is wrong with it.

Format ``pynet-model``, version 2 (version 1 files, which have no layer normalisation, still
load). Entries:

``metadata``
    1-D uint8 array: UTF-8 JSON text, an object with
    ``format`` ("pynet-model"), ``version`` (2), ``pynet_version`` (the writer's, informative),
    ``layers`` (first to last, each ``{"inputs": int, "outputs": int, "activation": "relu" | ...,
    "bias": bool, "dropout": float, "norm": bool}``; ``norm`` is new in version 2 and
    false when absent from a version 1 file), ``labels`` (the class names, one per output, or null),
    ``standardizer`` (bool: whether the two standardizer arrays are present) and ``info`` (a
    free-form object: how the model was trained, on what data; see ``Model.info``).
``w0``, ``w1``, …
    float64 (inputs × outputs): each layer's weights.
``b0``, ``b1``, …
    float64 (outputs,): the bias of each layer that has one (and only those).
``gain0``, ``shift0``, …
    float64 (outputs,): the layer normalisation's gain and shift of each layer that has one (and
    only those; version 2).
``standardizer_mean``, ``standardizer_std``
    float64 (inputs,): the input standardisation ``x ← (x − mean) / std`` learnt from the training
    data, when the model has one. Models are saved *without* it applied to the weights: whoever
    feeds the model (``python -m pynet eval``, ``predict``) applies ``m.standardizer`` to the data.

Nothing else may be in the archive. A reader refuses a higher ``version`` than it knows (files
are forward-incompatible by design: a new field that changes meaning gets a new version). Writes
are atomic: the archive is written to a temporary file in the target folder, then renamed over the
target, so an interrupted save never leaves a half-written model behind.

Optimiser state (momentum, Adam's moments) is not saved: a loaded model is for prediction or for
a fresh round of training. To continue an interrupted run exactly, use a checkpoint
(``fit(..., checkpoint=PATH)`` and ``resume=PATH``, pynet/checkpoint.py).
"""
import json
import lzma
import os
import struct
import zipfile
import zlib

import numpy as np

from ._version import __version__
from .errors import ModelFileError  # re-exported under its old name
from .classifier import ACTIVATION, Model, make_layer, make_model
from ._npy import Budget, read_npy
from ._files import atomic_file, local_error_reason

__all__ = ["save_model", "load_model", "ModelFileError", "FORMAT", "VERSION"]

FORMAT = "pynet-model"
VERSION = 2
_METADATA_LIMIT = 16 << 20    # bytes of JSON a reader accepts
_ARRAY_LIMIT = 1 << 33        # bytes an array entry may claim (8 GiB): refuse absurd headers early
_TOTAL_LIMIT = 1 << 33        # bytes all the arrays of one file may claim together (8 GiB)


# ---- saving ------------------------------------------------------------------------------------

def _json_default(value):
    """numpy scalars and arrays in ``info`` become plain JSON numbers and lists."""
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError("save_model: info holds a %s (%r), which JSON cannot store; use numbers, strings, "
                    "lists and dicts" % (type(value).__name__, value))


def _metadata(m, labels, info):
    layers = [{"inputs": l.inputs, "outputs": l.outputs, "activation": l.activation.name.lower(),
               "bias": l.b is not None, "dropout": float(l.dropout), "norm": l.norm} for l in m.layers]
    meta = {"format": FORMAT, "version": VERSION, "pynet_version": _pynet_version(), "layers": layers,
            "labels": labels, "standardizer": m.standardizer is not None, "info": info}
    try:
        return json.dumps(meta, default=_json_default, allow_nan=False, indent=1)
    except TypeError as e:
        raise ValueError(str(e)) from None
    except ValueError as e:   # NaN or infinity, a circular reference
        raise ValueError("save_model: info cannot be stored as JSON (%s)" % e) from None
    except RecursionError:   # lists or dicts nested over a thousand deep
        raise ValueError("save_model: info cannot be stored as JSON (its lists or dicts are nested too "
                         "deeply)") from None


def _check_loadable(text, arrays):
    """ValueError unless load_model would read back what save_model is about to write: the reader's
    own metadata check, its size limits, and finite weights, biases and standardizer (naming the
    layer and the first bad entry). Nothing is written for a model that could not be loaded."""
    def bad(what, values, rule):
        at = np.argwhere(~rule(values))[0]
        return ValueError("save_model: %s: %d of %d values are not %s (the first, at %s, is %r); load_model refuses "
                          "such a file, so nothing was written (was the model trained on NaN or infinite inputs, or "
                          "did training diverge?)" % (what, int(np.count_nonzero(~rule(values))), values.size,
                                                     "finite and > 0" if "std" in what else "finite",
                                                     list(map(int, at)), float(values[tuple(at)])))
    raw = arrays["metadata"]
    if raw.nbytes > _METADATA_LIMIT:
        raise ValueError("save_model: the metadata (info, labels) is %d bytes of JSON, more than the %d load_model "
                         "accepts" % (raw.nbytes, _METADATA_LIMIT))
    try:
        _check_metadata("save_model", json.loads(text))
    except ModelFileError as e:   # cannot happen for metadata _metadata wrote; kept as the guarantee
        raise ValueError("save_model: load_model would refuse this model's metadata: %s" % e.problem) from None
    total = 0
    for name, values in arrays.items():
        total += values.nbytes
        if values.nbytes > _ARRAY_LIMIT:
            raise ValueError("save_model: %s is %d bytes, more than the %d load_model accepts per array"
                             % (name, values.nbytes, _ARRAY_LIMIT))
        finite = np.isfinite if name != "standardizer_std" else (lambda v: np.isfinite(v) & (v > 0))
        if name != "metadata" and not finite(values).all():
            what = {"w": "layer %s's weights", "b": "layer %s's bias"}.get(name[0], "the model's %s") % (
                name[1:] if name[0] in "wb" and name[1:].isdigit() else name.replace("_", " ").replace(
                    "standardizer ", "standardizer's "))
            raise bad(what, values, finite)
    if total - raw.nbytes > _TOTAL_LIMIT:
        raise ValueError("save_model: the model's arrays are %d bytes, more than the %d load_model accepts"
                         % (total - raw.nbytes, _TOTAL_LIMIT))


def _pynet_version():
    return __version__


def save_model(m, path, *, info=None):
    """Save model ``m`` (weights, biases, activations, dropout rates, ``m.labels``,
    ``m.standardizer``, and ``info`` — by default ``m.info``) to ``path`` in the pynet-model
    format described in this module's docstring. The file is written atomically. Returns the path.

    Raises FileNotFoundError if the folder does not exist, NotADirectoryError if it is a file,
    PermissionError if it is not writable, ValueError if info cannot be stored as JSON, the
    model's labels/standardizer do not fit it, or anything load_model would refuse (a NaN or
    infinite weight, naming the layer; sizes beyond the reader's limits): save_model never writes
    a file load_model cannot read."""
    if not isinstance(m, Model):
        raise TypeError("save_model: expected a Model (from make_model or load_model), got %s" % type(m).__name__)
    path = os.fspath(path)
    info = m.info if info is None else info
    if not isinstance(info, dict):
        raise TypeError("save_model: info must be a dict, got %s" % type(info).__name__)
    labels = None
    if m.labels is not None:
        labels = [str(name) for name in m.labels]
        if len(labels) != m.layers[-1].outputs:
            raise ValueError("save_model: the model has %d labels but %d outputs"
                             % (len(labels), m.layers[-1].outputs))
    text = _metadata(m, labels, info)
    arrays = {"metadata": np.frombuffer(text.encode("utf-8"), dtype=np.uint8)}
    for i, l in enumerate(m.layers):
        arrays["w%d" % i] = np.ascontiguousarray(l.w.data, dtype=np.float64)
        if l.b is not None:
            arrays["b%d" % i] = np.ascontiguousarray(l.b.data.reshape(-1), dtype=np.float64)
        if l.norm:
            arrays["gain%d" % i] = np.ascontiguousarray(l.gain.data.reshape(-1), dtype=np.float64)
            arrays["shift%d" % i] = np.ascontiguousarray(l.shift.data.reshape(-1), dtype=np.float64)
    if m.standardizer is not None:
        mean, std = np.asarray(m.standardizer.mean, np.float64), np.asarray(m.standardizer.std, np.float64)
        if mean.shape != (m.layers[0].inputs,) or std.shape != mean.shape:
            raise ValueError("save_model: the model's standardizer is for %d features but the model takes %d"
                             % (mean.size, m.layers[0].inputs))
        arrays["standardizer_mean"], arrays["standardizer_std"] = mean, std
    _check_loadable(text, arrays)

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        if os.path.exists(folder):
            raise NotADirectoryError("cannot save the model to %s: %s is a file, not a folder" % (path, folder))
        raise FileNotFoundError("cannot save the model to %s: the folder %s does not exist" % (path, folder))
    if os.path.isdir(path):
        raise IsADirectoryError("cannot save the model to %s: it is a folder" % path)
    try:
        with atomic_file(path, durable=True) as f:   # usual permissions; nothing half-written on error
            np.savez_compressed(f, **arrays)
    except OSError as e:
        if e.strerror:
            raise type(e)(e.errno, "cannot save the model to %s: %s" % (path, local_error_reason(e))) from None
        raise
    return path


# ---- loading -----------------------------------------------------------------------------------

# what zipfile and zlib raise for damaged archives: a damaged name (UnicodeDecodeError), a flag
# (RuntimeError, NotImplementedError), a bad CRC or directory (BadZipFile, ValueError, struct.error)
_ZIP_ERRORS = (zipfile.BadZipFile, zlib.error, EOFError, OSError, NotImplementedError, RuntimeError,
               UnicodeDecodeError, ValueError, struct.error, OverflowError, lzma.LZMAError)


def _not_a_model(path, head):
    if not head:
        return "the file is empty, not a pynet model"
    if head.startswith(b"\x93NUMPY"):
        return "this is a single NumPy array (.npy), not a pynet model (.npz archive)"
    if head[:1] == b"\x80":
        return "this looks like a pickle; pynet model files never hold pickles, so it is not loaded"
    if head.startswith(b"PK"):
        return "corrupt or truncated archive: its zip directory is missing or damaged"
    return "not a pynet model: the file is not an .npz (zip) archive (wrong file type, or damaged)"


def _read_entry(path, z, name, what, shape=None, dtype=np.float64, limit=_ARRAY_LIMIT, *, budget):
    """Entry ``name`` of the archive as an array, read by the one bounded reader (pynet/_npy.py):
    its header's dtype, shape and size are checked before anything is inflated or allocated."""
    def error(problem):
        return ModelFileError(path, "entry %r (%s): %s" % (name, what, problem))
    try:
        return read_npy(z, z.getinfo(name + ".npy"), dtype, error, limit=limit, budget=budget, shape=shape)
    except ModelFileError:
        raise
    except _ZIP_ERRORS as e:
        raise error("corrupt or truncated data (%s)" % e) from None


def _field(path, obj, key, types, where):
    if key not in obj:
        raise ModelFileError(path, "the metadata lacks %r%s" % (key, where))
    value = obj[key]
    if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
        raise ModelFileError(path, "the metadata's %r%s should be %s, got %r"
                             % (key, where, " or ".join(t.__name__ for t in _as_tuple(types)), value))
    return value


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)


def _check_metadata(path, meta):
    if not isinstance(meta, dict):
        raise ModelFileError(path, "the metadata is not a JSON object")
    if meta.get("format") != FORMAT:
        raise ModelFileError(path, "not a pynet model: the metadata's format is %r, expected %r"
                             % (meta.get("format"), FORMAT))
    version = _field(path, meta, "version", int, "")
    if version > VERSION:
        raise ModelFileError(path, "written in pynet-model format version %d by a newer pynet (%s); this "
                                   "pynet reads versions up to %d: upgrade pynet to load it"
                             % (version, meta.get("pynet_version", "unknown version"), VERSION))
    if version < 1:
        raise ModelFileError(path, "invalid format version %d" % version)
    layers = _field(path, meta, "layers", list, "")
    if not layers:
        raise ModelFileError(path, "the metadata lists no layers")
    names = {a.name.lower(): a for a in ACTIVATION}
    checked = []
    for i, spec in enumerate(layers):
        where = " of layer %d" % i
        if not isinstance(spec, dict):
            raise ModelFileError(path, "layer %d's metadata is not a JSON object" % i)
        n_in, n_out = _field(path, spec, "inputs", int, where), _field(path, spec, "outputs", int, where)
        if n_in < 1 or n_out < 1:
            raise ModelFileError(path, "layer %d has %d inputs and %d outputs; both must be >= 1" % (i, n_in, n_out))
        act = _field(path, spec, "activation", str, where)
        if act.lower() not in names:
            raise ModelFileError(path, "layer %d has the unknown activation %r; this pynet knows %s"
                                 % (i, act, ", ".join(names)))
        bias = _field(path, spec, "bias", bool, where)
        norm = _field(path, spec, "norm", bool, where) if version >= 2 else False
        dropout = _field(path, spec, "dropout", (int, float), where)
        if not 0 <= dropout < 1:
            raise ModelFileError(path, "layer %d's dropout is %r; it must be in [0, 1)" % (i, dropout))
        if checked and checked[-1]["outputs"] != n_in:
            raise ModelFileError(path, "layer %d outputs %d values but layer %d takes %d"
                                 % (i - 1, checked[-1]["outputs"], i, n_in))
        checked.append({"inputs": n_in, "outputs": n_out, "activation": names[act.lower()], "bias": bias,
                        "dropout": float(dropout), "norm": norm})
    labels = meta.get("labels")
    if labels is not None:
        if not isinstance(labels, list) or not all(isinstance(s, str) for s in labels):
            raise ModelFileError(path, "the metadata's labels should be a list of class names, got %r" % (labels,))
        if len(labels) != checked[-1]["outputs"]:
            raise ModelFileError(path, "the metadata names %d classes but the last layer has %d outputs"
                                 % (len(labels), checked[-1]["outputs"]))
    standardizer = _field(path, meta, "standardizer", bool, "")
    info = meta.get("info", {})
    if not isinstance(info, dict):
        raise ModelFileError(path, "the metadata's info should be a JSON object, got %r" % (info,))
    return checked, labels, standardizer, info


def load_model(path):
    """Load a model saved by save_model. Returns a Model with its layers (weights, biases,
    activations, dropout rates), ``labels``, ``standardizer`` and ``info`` as saved; its
    predictions are bit-identical to the saved model's.

    Raises FileNotFoundError if there is no such file, and ModelFileError (a ValueError) naming the
    file and the problem if it is not a pynet model, is corrupt or truncated, was written by a
    newer pynet, or its arrays do not match its metadata."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError("model file not found: %s" % path)
    if os.path.isdir(path):
        raise ModelFileError(path, "is a folder, not a model file")
    try:
        with open(path, "rb") as f:
            head = f.read(8)
    except OSError as e:
        raise type(e)(e.errno, "cannot read the model file %s: %s" % (path, e.strerror)) from None
    if not zipfile.is_zipfile(path):
        raise ModelFileError(path, _not_a_model(path, head))
    try:
        with zipfile.ZipFile(path) as z:
            return _load(path, z)
    except ModelFileError:
        raise
    except _ZIP_ERRORS as e:
        raise ModelFileError(path, "corrupt or truncated archive (%s)" % e) from None


def _load(path, z):
    entries = {}
    for info in z.infolist():
        if not info.filename.endswith(".npy"):
            raise ModelFileError(path, "unexpected entry %r in the archive (a model holds only .npy arrays)"
                                 % info.filename)
        entries[info.filename[:-4]] = info
    total = sum(info.file_size for info in entries.values())
    if total > _TOTAL_LIMIT + _METADATA_LIMIT:
        raise ModelFileError(path, "the archive's entries claim %d bytes in total, more than the %d allowed"
                             % (total, _TOTAL_LIMIT + _METADATA_LIMIT))
    budget = Budget(_TOTAL_LIMIT)
    if "metadata" not in entries:
        raise ModelFileError(path, "not a pynet model: the archive has no 'metadata' entry (entries: %s)"
                             % (", ".join(sorted(entries)) or "none"))
    raw = _read_entry(path, z, "metadata", "the JSON metadata", dtype=np.uint8, limit=_METADATA_LIMIT,
                      budget=Budget(_METADATA_LIMIT))
    if raw.ndim != 1:
        raise ModelFileError(path, "the metadata entry should be 1-D bytes, got shape %s" % (raw.shape,))
    try:
        meta = json.loads(raw.tobytes().decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise ModelFileError(path, "the metadata is not valid UTF-8 JSON (%s)" % e) from None
    except RecursionError:   # e.g. thousands of nested '[': Python's JSON parser gives up
        raise ModelFileError(path, "the metadata is not valid pynet JSON: its arrays or objects are nested "
                                   "too deeply to parse") from None
    specs, labels, has_standardizer, info = _check_metadata(path, meta)

    expected = {"metadata"}
    for i, s in enumerate(specs):
        expected.add("w%d" % i)
        if s["bias"]:
            expected.add("b%d" % i)
        if s["norm"]:
            expected |= {"gain%d" % i, "shift%d" % i}
    if has_standardizer:
        expected |= {"standardizer_mean", "standardizer_std"}
    missing = sorted(expected - set(entries))
    if missing:
        raise ModelFileError(path, "the archive lacks the array%s %s that its metadata calls for"
                             % ("s" if len(missing) > 1 else "", ", ".join(missing)))
    extra = sorted(set(entries) - expected)
    if extra:
        raise ModelFileError(path, "unexpected entr%s %s in the archive (not in its metadata)"
                             % ("ies" if len(extra) > 1 else "y", ", ".join(extra)))

    def finite(name, what, values):
        if not np.all(np.isfinite(values)):
            raise ModelFileError(path, "entry %r (%s) holds NaN or infinite values" % (name, what))
        return values

    layers = []
    for i, s in enumerate(specs):
        w = finite("w%d" % i, "layer %d's weights" % i,
                   _read_entry(path, z, "w%d" % i, "layer %d's weights" % i, (s["inputs"], s["outputs"]), budget=budget))
        l = make_layer(s["inputs"], s["outputs"], s["activation"], bias=s["bias"], dropout=s["dropout"],
                       norm=s["norm"])
        l.w = w
        if s["bias"]:
            l.b = finite("b%d" % i, "layer %d's bias" % i,
                         _read_entry(path, z, "b%d" % i, "layer %d's bias" % i, (s["outputs"],), budget=budget))
        for name in ("gain", "shift") if s["norm"] else ():
            key, what = "%s%d" % (name, i), "layer %d's normalisation %s" % (i, name)
            setattr(l, name, finite(key, what, _read_entry(path, z, key, what, (s["outputs"],), budget=budget)))
        layers.append(l)
    m = make_model(layers)
    m.labels = labels
    m.info = info
    if has_standardizer:
        from .training import Standardizer
        n = specs[0]["inputs"]
        mean = finite("standardizer_mean", "the standardizer's mean",
                      _read_entry(path, z, "standardizer_mean", "the standardizer's mean", (n,), budget=budget))
        std = _read_entry(path, z, "standardizer_std", "the standardizer's std", (n,), budget=budget)
        if not np.all(np.isfinite(std) & (std > 0)):
            raise ModelFileError(path, "entry 'standardizer_std' has values that are not finite and > 0")
        m.standardizer = Standardizer(mean, std)
    return m
