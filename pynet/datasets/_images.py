"""The homework's own data format: a text file listing image paths, one per line, and a labels file
naming the classes; an image's class is the label that occurs in its file name.

``load_image_classification_data`` decodes the images in parallel worker processes, and keeps the
decoded pixels in a cache (under ~/.cache/pynet/images, or $PYNET_CACHE/images) so that loading the
same list again only has to check that no image changed.

Relative paths in a list resolve as in the homework, which ran from its repository root: against
the current directory if the file exists there, else against the folder holding the list file.
"""
import hashlib
import json
import operator
import os
import re
import stat
import struct
import warnings
import zlib
from pathlib import Path

import numpy as np

from ..data import make_data
from ._common import DataFileError, atomic_file, cache_dir, pixels_to_X, read_exact, read_label_names
from ._parallel import PARALLEL_MIN, _decode_images  # noqa: F401  PARALLEL_MIN re-exported



def load_image_classification_data(images, labels, bias=False, *, cache=True, workers=None, progress=None):
    """Load the images listed in the file ``images`` with the classes named in the file ``labels``,
    as the homework's ``load_image_classification_data`` does.

    Returns a Data: X holds one image per row, pixels / 255 in channel-planar order (all of channel
    0, then 1, then 2), plus a constant-1 column if ``bias``; y is one-hot over the labels file's
    classes, which are ``.labels``. All images must have the same size and number of channels.

    ``cache=False`` neither reads nor writes the decoded-pixel cache. ``workers`` is the number of
    decoding processes (default: one per available core; 1 decodes in this process).
    ``progress`` shows a progress line while decoding long lists (None: unless PYNET_PROGRESS=0)."""
    workers = _check_workers(workers)
    names = read_label_names(labels)
    list_path = Path(images)
    entries, lines = _read_list(list_path)
    paths, fingerprint = _resolve(entries, lines, list_path)
    classes = _classify(entries, lines, names, list_path, labels)
    X = _design_matrix(paths, lines, list_path, fingerprint, bias, cache, workers, progress)
    return make_data(X, classes, classes=len(names), labels=names)


def _design_matrix(paths, lines, source, fingerprint, bias, cache, workers, progress):
    """X for the images at ``paths``: from the decode cache kept beside ``source`` when its
    fingerprint matches, else decoded (and cached when ``cache``)."""
    found = _cache_load(source, fingerprint, len(paths)) if cache else None
    if found is None:
        pixels, shape = _decode_images(paths, lines, source, workers, progress)
        if cache:
            _cache_store(source, fingerprint, pixels, shape)
    else:
        pixels, shape = found
    X = pixels_to_X(pixels, bias, shape)
    del pixels
    return X


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff", ".webp", ".ppm", ".pgm")


def class_folders(root):
    """The sorted names of root's sub-folders that hold at least one image file (hidden ones
    skipped), or [] when there are none."""
    root = Path(root)
    found = []
    for sub in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
        if any(f.suffix.lower() in IMAGE_SUFFIXES and f.is_file() for f in sub.iterdir()):
            found.append(sub.name)
    return found


def load_image_folder(root, bias=False, *, cache=True, workers=None, progress=None):
    """Load images laid out as ``root/<class>/<image>`` (torchvision's ImageFolder layout) as a Data.

    The classes are the sub-folders' names in sorted order (as ImageFolder's ``classes``): class k
    is ``.labels[k]`` and column k of y. Every image file (.png, .jpg, ... ; hidden files skipped)
    directly inside a class folder is one example, in sorted order within its class. X is as
    ``load_image_classification_data`` gives it: pixels / 255, channel-planar, a constant-1 column
    if ``bias``; all images must have the same size and channels. ``cache``, ``workers`` and
    ``progress`` as there."""
    workers = _check_workers(workers)
    root = Path(root).expanduser()
    if not root.is_dir():
        if root.exists():
            raise NotADirectoryError("%s is a file, not a folder of class folders" % root)
        raise FileNotFoundError("image folder not found: %s" % root)
    names = class_folders(root)
    if not names:
        raise FileNotFoundError("%s holds no class folders with images: expected %s/<class>/<image>.png (one "
                                "sub-folder per class, as torchvision's ImageFolder reads)" % (root, root))
    paths, classes, keys = [], [], []
    for k, name in enumerate(names):
        for f in sorted((root / name).iterdir()):
            if f.name.startswith(".") or f.suffix.lower() not in IMAGE_SUFFIXES or not f.is_file():
                continue
            st = f.stat()
            paths.append(str(f))
            classes.append(k)
            keys.append("%s\0%d\0%d" % (f, st.st_size, st.st_mtime_ns))
    fingerprint = hashlib.sha256("\n".join(keys).encode("utf-8", "surrogateescape")).hexdigest()
    X = _design_matrix(paths, None, root, fingerprint, bias, cache, workers, progress)
    return make_data(X, np.asarray(classes, dtype=np.intp), classes=len(names), labels=names)


def _check_workers(workers):
    """None (the default count), or a positive integer: checked before anything is read, whether
    or not the cache will spare the decoding."""
    if workers is None:
        return None
    try:
        if isinstance(workers, bool):
            raise TypeError
        count = operator.index(workers)
    except TypeError:
        raise ValueError("workers must be a positive integer (the number of decoding processes) or None (one "
                         "per core, at most 8), got %r" % (workers,)) from None
    if count < 1:
        raise ValueError("workers must be a positive integer (the number of decoding processes) or None (one "
                         "per core, at most 8), got %d" % count)
    return count


# ---- the list --------------------------------------------------------------------------------------

def _read_list(list_path):
    """The paths in a list file and their line numbers. Surrounding whitespace is ignored, as are
    blank lines."""
    if list_path.is_dir():
        raise IsADirectoryError("%s is a folder, not an image list (a text file naming one image per line)"
                                % list_path)
    if not list_path.is_file():
        raise FileNotFoundError("image list not found: %s" % list_path)
    entries, lines = [], []
    # fsdecode: file names are bytes on POSIX; undecodable ones survive as surrogate escapes.
    for number, line in enumerate(os.fsdecode(list_path.read_bytes()).split("\n"), 1):
        entry = line.strip()
        if "\0" in entry:   # no file name can hold one: a binary file, or a damaged list
            raise DataFileError(list_path, "line %d holds a NUL byte, which no file name can contain (is this a "
                                           "binary file rather than a list of image paths?)" % number)
        if entry:
            entries.append(entry)
            lines.append(number)
    if not entries:
        raise DataFileError(list_path, "the image list is empty: it names no image files")
    return entries, lines


def _resolve(entries, lines, list_path):
    """Each entry's absolute path (current directory first, then the list's folder), and a
    fingerprint of every path, size and modification time, which keys the cache."""
    cwd = os.path.join(os.getcwd(), "")
    folder = os.path.join(cwd, os.path.dirname(str(list_path)), "")
    # A file cannot exist under a folder that does not: one check per folder spares most entries a
    # failing stat under the current directory when the list's paths are relative to its own folder.
    folder_exists = {}
    paths, keys = [], []
    for entry, line in zip(entries, lines):
        if os.path.isabs(entry):
            candidates = (entry,)
        else:
            parent = os.path.dirname(entry)
            here = folder_exists.get(parent)
            if here is None:
                here = folder_exists[parent] = os.path.isdir(cwd + parent)
            candidates = (cwd + entry, folder + entry) if here else (folder + entry,)
        for path in candidates:
            try:
                st = os.stat(path)
                break
            except (FileNotFoundError, NotADirectoryError):
                continue
            except OSError as e:   # a name too long, a folder we may not enter, a symlink loop
                raise type(e)(e.errno, "cannot read image %s (line %d of %s): %s"
                              % (os.path.normpath(path), line, list_path, e.strerror)) from None
        else:
            looked = (entry,) if os.path.isabs(entry) else (cwd + entry, folder + entry)
            looked = list(dict.fromkeys(os.path.normpath(c) for c in looked))   # the same path once
            where = "" if looked == [os.path.normpath(entry)] else "; looked for %s" % " and ".join(looked)
            raise FileNotFoundError("image not found: %s (line %d of %s)%s" % (entry, line, list_path, where))
        if not stat.S_ISREG(st.st_mode):
            raise DataFileError(path, "is not a file (line %d of %s)" % (line, list_path))
        paths.append(path)
        keys.append("%s\0%d\0%d" % (path, st.st_size, st.st_mtime_ns))
    fingerprint = hashlib.sha256("\n".join(keys).encode("utf-8", "surrogateescape")).hexdigest()
    return paths, fingerprint


def _classify(entries, lines, names, list_path, labels_path):
    """Each entry's class: the index of the one label its file name (without the extension)
    contains as a whole token, i.e. not inside a longer run of letters and digits: "7" is the
    class of "123_7.png" but not of "17_3.png". When several labels match a name that starts with
    a number and a separator (export-png's "<index>_<label>.png"), that leading index is not read
    as a label."""
    classes = np.empty(len(entries), dtype=np.intp)
    patterns = [re.compile(r"(?<![^\W_])%s(?![^\W_])" % re.escape(name)) for name in names]
    # Names like "<index>_<label>.png" differ only in their leading digits. When every label starts
    # with a letter, no label can match inside a leading run of digits followed by a separator, so
    # dropping that run is exact and lets one lookup serve every file of a class.
    strip = _LEADING_INDEX if names and all(name[:1].isalpha() for name in names) else None
    memo = {}
    for i, entry in enumerate(entries):
        key = os.path.splitext(os.path.basename(entry))[0]
        if strip is not None:
            key = strip.sub("", key)
        hit = memo.get(key)
        if hit is None:
            hits = [k for k, pattern in enumerate(patterns) if pattern.search(key)]
            if len(hits) > 1 and _LEADING_INDEX.match(key):
                # "<index>_<label>" (export-png's names) with bare-number labels: the index is no label
                rest = _LEADING_INDEX.sub("", key)
                hits = [k for k, pattern in enumerate(patterns) if pattern.search(rest)] or hits
            if len(hits) != 1:
                _unclassified(entry, lines[i], hits, names, list_path, labels_path)
            hit = memo[key] = hits[0]
        classes[i] = hit
    return classes


_LEADING_INDEX = re.compile(r"^\d+(?=[\W_])")
def _unclassified(entry, line, hits, names, list_path, labels_path):
    shown = ", ".join(names) if len(names) <= 20 else ", ".join(names[:20]) + ", ..."
    problem = "contains none of" if not hits else \
        "contains more than one (%s) of" % ", ".join(names[k] for k in hits)
    raise DataFileError(list_path, "line %d: the file name %r %s the labels in %s (%s); an image's class is "
                                   "the one label its file name contains as a whole word (between "
                                   "separators such as _ - . or the ends)"
                        % (line, os.path.basename(entry), problem, labels_path, shown))


# ---- the cache -------------------------------------------------------------------------------------
#
# One file per list (named by a hash of the list's absolute path): b"PYNETIMG", a uint32 header length,
# a JSON header (format version, the fingerprint of every image's path, size and mtime, the image
# count and shape, a CRC-32 of the pixels), then the uint8 pixels as decoded. Anything unexpected —
# another fingerprint, a short file, a bad CRC — makes the entry a miss, never an error.

_CACHE_MAGIC = b"PYNETIMG"
_CACHE_VERSION = 1
_cache_warned = False


def _cache_file(list_path):
    key = hashlib.sha256(os.fsencode(os.path.realpath(list_path))).hexdigest()[:32]
    return cache_dir() / "images" / (key + ".bin")


def _cache_load(list_path, fingerprint, n):
    path = _cache_file(list_path)
    try:
        with open(path, "rb") as f:
            if f.read(8) != _CACHE_MAGIC:
                return None
            (length,) = struct.unpack("<I", f.read(4))
            if length > 1 << 16:
                return None
            header = json.loads(f.read(length))
            if not isinstance(header, dict) or header.get("version") != _CACHE_VERSION \
                    or header.get("fingerprint") != fingerprint or not _exact_int(header.get("n")) \
                    or header["n"] != n:
                return None
            shape, crc = header.get("shape"), header.get("crc32")
            if not (isinstance(shape, list) and len(shape) == 3 and all(_exact_int(v) and v >= 1 for v in shape)
                    and _exact_int(crc)):
                return None
            h, w, c = shape
            if os.fstat(f.fileno()).st_size != 12 + length + n * h * w * c:   # Python ints: no wrap-around
                return None
            pixels = np.empty((n, h * w * c), dtype=np.uint8)
            read_exact(f, pixels, path, "cached pixels")
        if zlib.crc32(pixels) != crc:
            return None
        return pixels, (h, w, c)
    # anything unexpected is a miss: also a header nested too deeply for json (RecursionError)
    except (OSError, ValueError, KeyError, TypeError, struct.error, RecursionError, MemoryError):
        return None


def _exact_int(v):
    return type(v) is int   # not bool, not float


def _cache_store(list_path, fingerprint, pixels, shape):
    global _cache_warned
    header = json.dumps({"version": _CACHE_VERSION, "fingerprint": fingerprint, "n": pixels.shape[0],
                         "shape": list(shape), "crc32": zlib.crc32(pixels),
                         "list": os.fsdecode(os.path.realpath(list_path))}).encode("utf-8")
    try:
        with atomic_file(_cache_file(list_path)) as f:
            f.write(_CACHE_MAGIC + struct.pack("<I", len(header)) + header)
            f.write(memoryview(pixels).cast("B"))
    except OSError as e:
        if not _cache_warned:
            _cache_warned = True
            warnings.warn("pynet: could not write the image cache in %s (%s); image lists will be decoded "
                          "every time. Set PYNET_CACHE to a writable folder." % (cache_dir(), e), stacklevel=3)


def clear_cache():
    """Delete every cached image list; returns the number of bytes freed."""
    folder = cache_dir() / "images"
    freed = 0
    if folder.is_dir():
        for entry in folder.iterdir():
            if entry.suffix in (".bin", ".part") and entry.is_file():
                freed += entry.stat().st_size
                entry.unlink()
    return freed
