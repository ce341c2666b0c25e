"""What every loader in pynet.datasets shares: where datasets and caches live, reading dataset files
(gzipped or not, recognised by content) into preallocated buffers, atomic writes, the labels-file
format, the one uint8 → float64 conversion, and the exceptions for bad data files and downloads.
"""
import contextlib
import gzip
import os
import struct
import zlib
from pathlib import Path

import numpy as np

from .._files import atomic_file, local_error_reason, temp_name  # noqa: F401  re-exported
from ..errors import ChecksumError, DataFileError, DownloadError  # re-exported

GZIP_MAGIC = b"\x1f\x8b"
SPLITS = ("train", "test")


def check_split(split):
    if split not in SPLITS:
        raise ValueError("split must be 'train' or 'test', got %r" % (split,))
    return split


# ---- where things live ---------------------------------------------------------------------------

def cache_dir():
    """pynet's cache folder: $PYNET_CACHE, else $XDG_CACHE_HOME/pynet, else ~/.cache/pynet."""
    env = os.environ.get("PYNET_CACHE")
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg).expanduser() if xdg else Path.home() / ".cache") / "pynet"


def default_roots(name):
    """The folders searched for dataset ``name`` when no root is given, in order:
    $PYNET_DATA/<name> (if PYNET_DATA is set), then the cache folder's <name>."""
    roots = []
    base = os.environ.get("PYNET_DATA")
    if base:
        roots.append(Path(base).expanduser() / name)
    roots.append(cache_dir() / name)
    return roots


def find_root(name, split, root, missing, title):
    """The folder holding the standard files of dataset ``name``'s ``split``.

    ``missing(folder, split)`` lists the files a folder lacks. With ``root`` given, that folder (or
    its subfolder ``name``) must hold them, else FileNotFoundError says what is expected and how to
    get it. Without, the default_roots are searched and None is returned when none has the files."""
    if root is None:
        for folder in default_roots(name):
            if folder.is_dir() and not missing(folder, split):
                return folder
        return None
    root = Path(root).expanduser()
    for folder in (root, root / name):
        if folder.is_dir() and not missing(folder, split):
            return folder
    where = "does not exist" if not root.exists() else "is not a folder" if not root.is_dir() else \
        "lacks %s" % " and ".join(missing(root, split))
    # a folder named for the other dataset (--data .../cifar10 for MNIST): suggest a sibling, not that one
    target = root.parent / name if root.name in ("mnist", "cifar10") and root.name != name else root
    raise FileNotFoundError(
        "no %s %s data in %s: the folder %s (nor is there a %s/ subfolder holding them). "
        "Get the files with: python -m pynet.datasets download %s --root %s"
        % (title, split, root, where, name, name, target))


def not_found_anywhere(name, split, missing, title, extra=""):
    """The FileNotFoundError for dataset ``name`` found in none of the default roots."""
    roots = default_roots(name)
    return FileNotFoundError(
        "%s %s data not found: looked in %s for %s. Get it with: python -m pynet.datasets download %s "
        "(or set PYNET_DATA to a folder holding %s/)%s"
        % (title, split, ", ".join(str(r) for r in roots), " and ".join(missing(roots[-1], split)), name,
           name, extra))


def download_root(name):
    """Where ``download`` puts dataset ``name`` by default: the first folder the loaders search."""
    return default_roots(name)[0]


# ---- reading -------------------------------------------------------------------------------------

def content_size(path):
    """The size of the file's content once decompressed: the file size for a plain file; for a gzip
    file, the size its trailer records (modulo 2**32; corruption shows up later, when reading)."""
    with open(path, "rb") as f:
        if f.read(2) != GZIP_MAGIC:
            return os.fstat(f.fileno()).st_size
        f.seek(0, os.SEEK_END)
        if f.tell() < 18:
            raise DataFileError(path, "truncated gzip file (%d bytes)" % f.tell())
        compressed = f.tell()
        f.seek(-4, os.SEEK_END)
        size = struct.unpack("<I", f.read(4))[0]
    if size > 1100 * compressed:   # deflate cannot compress better than about 1032:1
        raise DataFileError(path, "corrupt gzip file: its trailer claims %d bytes of content from %d "
                                  "compressed bytes" % (size, compressed))
    return size


@contextlib.contextmanager
def open_data(path):
    """Open a dataset file for binary reading, decompressing it on the fly if it is gzipped.
    Gzip is recognised by its magic bytes, so a file's name need not end in .gz."""
    f = open(path, "rb")
    try:
        if f.read(2) == GZIP_MAGIC:
            f.seek(0)
            with gzip.GzipFile(fileobj=f, mode="rb") as g:
                yield g
        else:
            f.seek(0)
            yield f
    finally:
        f.close()


_GZIP_ERRORS = (gzip.BadGzipFile, EOFError, zlib.error)


def read_exact(f, buf, path, what):
    """Fill ``buf`` (any writable buffer, e.g. a numpy array) from ``f``, or raise DataFileError
    saying that ``what`` is truncated."""
    mv = memoryview(buf).cast("B")
    got = 0
    # At most 1 MiB at a time: GzipFile.readinto(b) makes a temporary bytes object of len(b), and one
    # the size of a whole dataset would be fresh memory that the kernel must provide every time.
    step = 1 << 20 if isinstance(f, gzip.GzipFile) else len(mv)
    try:
        while got < len(mv):
            k = f.readinto(mv[got:got + step])
            if not k:
                break
            got += k
    except _GZIP_ERRORS as e:
        raise DataFileError(path, "corrupt or truncated gzip data while reading %s (%s)" % (what, e)) from None
    if got < len(mv):
        raise DataFileError(path, "truncated: %s needs %d bytes but the file ends after %d"
                            % (what, len(mv), got))


def expect_end(f, path, expected_bytes):
    """Check that nothing follows the expected content (for gzip this also verifies its CRC)."""
    try:
        extra = f.read(1)
    except _GZIP_ERRORS as e:
        raise DataFileError(path, "corrupt gzip data (%s)" % e) from None
    if extra:
        raise DataFileError(path, "longer than expected: the content should end after %d bytes"
                            % expected_bytes)


def read_small(path, limit=1 << 20):
    """The whole (decompressed) content of a small file, such as a labels file."""
    with open_data(path) as f:
        try:
            data = f.read(limit + 1)
        except _GZIP_ERRORS as e:
            raise DataFileError(path, "corrupt gzip data (%s)" % e) from None
    if len(data) > limit:
        raise DataFileError(path, "larger than %d bytes; is this the right file?" % limit)
    return data


def read_label_names(path, what="labels file"):
    """The class names in a labels file: one per line, surrounding whitespace ignored. Blank lines
    at the end are allowed (CIFAR-10's batches.meta.txt ends with one); a blank line before a name,
    a duplicate name or an empty file is a DataFileError."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError("%s not found: %s" % (what, path))
    lines = [os.fsdecode(line).strip() for line in read_small(path).splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    if not lines:
        raise DataFileError(path, "%s names no classes (it is empty)" % what)
    seen = {}
    for i, name in enumerate(lines, 1):
        if not name:
            raise DataFileError(path, "line %d of the %s is blank; every line must name a class "
                                      "(only blank lines at the end are allowed)" % (i, what))
        if name in seen:
            raise DataFileError(path, "class %r appears twice in the %s (lines %d and %d)"
                                % (name, what, seen[name], i))
        seen[name] = i
    return lines


# ---- files --------------------------------------------------------------------------------------

def find_file(folder, *spellings):
    """The first of ``spellings`` found in ``folder``, each uncompressed first (faster), then with
    .gz; None when there is none. The one lookup of a dataset's standard files."""
    for name in spellings:
        for candidate in (name, name + ".gz"):
            path = Path(folder) / candidate
            if path.is_file():
                return path
    return None


# ---- pixels --------------------------------------------------------------------------------------

def pixels_to_X(pixels, bias=False, hwc=None):
    """The design matrix for uint8 pixels, one image per row: a new C-contiguous float64 array of
    pixels / 255 (plus a constant-1 column when ``bias``), in channel-planar order.

    ``pixels`` is (n, features), or (n, more) of which the first features columns are used when a
    view is passed. If ``hwc`` = (height, width, channels) is given, rows are interleaved
    (row-major pixels, channels innermost, as PNG stores them) and are reordered to planar on the
    fly. X is allocated once and filled by a single division: no float64 temporaries."""
    n, f = pixels.shape
    X = np.empty((n, f + (1 if bias else 0)))
    body, src = X[:, :f], pixels
    if hwc is not None and hwc[2] > 1:
        h, w, c = hwc
        src = pixels.reshape(n, h, w, c).transpose(0, 3, 1, 2)
        body = body.reshape(n, c, h, w)
        assert np.may_share_memory(body, X), "a reshape of X's columns must be a view"
    np.divide(src, 255.0, out=body)
    if bias:
        X[:, f] = 1.0
    return X
