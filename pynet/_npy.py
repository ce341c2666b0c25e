"""The one bounded reader of ``.npy`` entries in a zip archive (pynet's model files).

Nothing here trusts the file: the header is parsed by a small strict parser (never ``ast`` or
``eval``: CPython 3.11's ``ast.literal_eval`` is not thread-safe, and numpy's header reader uses it),
the sizes it declares are computed in Python ints (no int64 wrap-around) and compared with what the
archive's directory says the entry holds, and that with what deflate can give from the stored bytes,
all before anything is inflated or allocated. The caller bounds the total across entries with a
``Budget``. Every failure is ``error(problem)``, a callable the caller gives (it names the file).
Safe to call from several threads at once (no shared state)."""
import re
import struct
import zipfile

import numpy as np

_MAGIC = b"\x93NUMPY"
_DEFLATE_RATIO = 1100        # deflate cannot compress better than about 1032:1
_HEADER_LIMIT = 1 << 16      # bytes of header text a reader accepts
_METHODS = {zipfile.ZIP_STORED: "stored", zipfile.ZIP_DEFLATED: "deflate"}

_ITEM = re.compile(r"\s*'(descr|fortran_order|shape)'\s*:\s*"
                   r"('[<>|=]?[a-zA-Z][0-9]{0,2}'|True|False|\((?:\s*[0-9]{1,20}\s*,)*(?:\s*[0-9]{1,20}\s*)?\))"
                   r"\s*(,|(?=\}))")


def parse_header(text):
    """``(descr, fortran_order, shape)`` from a .npy header's text, or ValueError saying why."""
    text = text.rstrip(" \n")
    if not (text.startswith("{") and text.endswith("}")):
        raise ValueError("the header is not a {...} dict")
    found, pos, body = {}, 1, text[:-1]
    while body[pos:].strip():
        m = _ITEM.match(body, pos)
        if not m:
            raise ValueError("unexpected header text at %r" % body[pos:pos + 40])
        key, value = m.group(1), m.group(2)
        if key in found:
            raise ValueError("the header names %r twice" % key)
        if key == "descr" and not value.startswith("'"):
            raise ValueError("the header's descr %s is not a dtype string" % value)
        if key == "fortran_order" and value not in ("True", "False"):
            raise ValueError("the header's fortran_order %s is not True or False" % value)
        if key == "shape" and not value.startswith("("):
            raise ValueError("the header's shape %s is not a tuple" % value)
        found[key] = value
        pos = m.end()
    missing = sorted({"descr", "fortran_order", "shape"} - set(found))
    if missing:
        raise ValueError("the header lacks %s" % ", ".join(missing))
    shape = tuple(int(v) for v in found["shape"][1:-1].split(",") if v.strip())
    return found["descr"][1:-1], found["fortran_order"] == "True", shape


class Budget:
    """The bytes still allowed across the entries of one archive."""

    def __init__(self, limit):
        self.left = limit


def read_npy(z, info, dtype, error, *, limit, budget, shape=None):
    """The array in the .npy entry ``info`` of the open ZipFile ``z``, as C-contiguous ``dtype``.
    Its declared dtype must have ``dtype``'s kind and size, its shape ``shape`` when given, and its
    bytes at most ``limit`` and what ``budget`` has left (then taken from it)."""
    dtype = np.dtype(dtype)
    if info.flag_bits & 0x1:
        raise error("the entry is encrypted (pynet model files never are)")
    if info.compress_type not in _METHODS:
        raise error("the entry uses zip compression method %d; pynet model files use stored or deflate"
                    % info.compress_type)
    if info.compress_type == zipfile.ZIP_STORED and info.file_size != info.compress_size:
        raise error("the zip directory says the stored entry holds %d bytes but %d are stored"
                    % (info.file_size, info.compress_size))
    if info.file_size > _DEFLATE_RATIO * info.compress_size + 1024:
        raise error("the zip directory claims %d bytes from %d compressed bytes, more than deflate can give"
                    % (info.file_size, info.compress_size))
    if info.file_size > limit + _HEADER_LIMIT:
        raise error("the entry holds %d bytes, more than the %d allowed" % (info.file_size, limit))
    with z.open(info) as f:
        head = f.read(10)
        if len(head) < 10 or not head.startswith(_MAGIC):
            raise error("not a .npy array (no NumPy magic bytes)")
        major = head[6]
        if major == 1:
            (length,) = struct.unpack("<H", head[8:10])
            start = 10
        elif major in (2, 3):
            (length,) = struct.unpack("<I", head[8:10] + f.read(2))
            start = 12
        else:
            raise error("unsupported .npy version %d.%d" % (major, head[7]))
        if length > _HEADER_LIMIT:
            raise error("its .npy header claims %d bytes, more than the %d allowed" % (length, _HEADER_LIMIT))
        raw = f.read(length)
        if len(raw) != length:
            raise error("truncated .npy header")
        try:
            descr, fortran, got_shape = parse_header(raw.decode("utf-8" if major == 3 else "latin1"))
        except (UnicodeDecodeError, ValueError) as e:
            raise error("not a valid .npy header (%s)" % e) from None
        if not re.fullmatch(r"[<>|=]?[fiub][1248]", descr):
            raise error("holds values of type %r, expected %s" % (descr, dtype))
        got_dtype = np.dtype(descr)
        if got_dtype.kind != dtype.kind or got_dtype.itemsize != dtype.itemsize:
            raise error("holds %s values, expected %s" % (got_dtype, dtype))
        if shape is not None and got_shape != tuple(shape):
            raise error("has shape %s, expected %s (from the metadata)"
                        % ("x".join(map(str, got_shape)) or "()", "x".join(map(str, shape))))
        count = 1
        for d in got_shape:
            count *= d   # Python ints: no wrap-around
        nbytes = count * got_dtype.itemsize
        if nbytes > limit:
            raise error("claims %d bytes, more than the %d allowed" % (nbytes, limit))
        if start + length + nbytes != info.file_size:
            raise error("its header announces %s values (%d bytes) but the entry holds %d bytes of data"
                        % ("x".join(map(str, got_shape)) or "()", nbytes, info.file_size - start - length))
        if nbytes > budget.left:
            raise error("the archive's arrays add up to more than the total of bytes allowed")
        budget.left -= nbytes
        values = np.empty(got_shape[::-1] if fortran else got_shape, dtype=got_dtype)
        flat = values.reshape(-1).view(np.uint8)
        done = 0
        while done < nbytes:   # in chunks: one whole read would hold a second copy of the array
            chunk = f.read(min(nbytes - done, 1 << 20))
            if not chunk:
                raise error("truncated data")
            flat[done:done + len(chunk)] = np.frombuffer(chunk, np.uint8)
            done += len(chunk)
        if f.read(1):   # also makes zipfile check the entry's CRC
            raise error("longer than its header says")
    if fortran:
        values = values.T
    values = values.astype(dtype.newbyteorder("="), copy=False)
    return np.ascontiguousarray(values)
