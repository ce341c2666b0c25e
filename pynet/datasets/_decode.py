"""Decoding image files into the homework's pixels, in this process or in a worker process.

pynet runs this file as a script (``python _decode.py``) to decode a share of a long image list on
another core: tiny images such as MNIST's spend most of their decoding time in Pillow's Python
code, which holds the GIL, so threads do not help but processes do. As a script it imports nothing
from pynet, only Pillow (and numpy for 16-bit images).

Worker protocol. stdin: one JSON line ``{"shape": [height, width, channels]}``, then one JSON
string (a path) per line. stdout, in the order of the paths: batches of ``+``, a 4-byte
little-endian image count and those images' pixel bytes; then, if an image cannot be used, ``!``,
a 4-byte little-endian length and a JSON object describing the problem, after which the worker
stops. Batching keeps the parent's share of the work (reading the pipe) negligible.
"""
import io
import json
import struct
import sys

_Image = _PngImageFile = None
_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def load_pillow():
    """Import Pillow, or say plainly that it is missing (it is one of pynet's dependencies)."""
    global _Image, _PngImageFile
    try:
        from PIL import Image, PngImagePlugin
    except ImportError as e:
        raise ImportError("pynet needs Pillow to read images (%s); install it with: pip install pillow" % e) from None
    _Image, _PngImageFile = Image, PngImagePlugin.PngImageFile


def decode(path):
    """(pixels, (height, width, channels)) for the image file at ``path``. pixels are bytes,
    row-major with the channels innermost, 8 bits per sample, as the homework's loader (stb_image)
    produced them: grey gives 1 channel, grey+alpha 2, RGB 3, RGBA 4; palette images become RGB
    (RGBA if they have transparency); 1-bit images become 0/255; 16-bit samples keep their high byte."""
    if _Image is None:
        load_pillow()
    with open(path, "rb") as f:
        data = io.BytesIO(f.read())
    # A PNG goes straight to Pillow's PNG reader: skipping Image.open's format sniffing saves a
    # fifth of the time on images as small as MNIST's.
    with (_PngImageFile(data) if data.getbuffer()[:8] == _PNG_SIGNATURE else _Image.open(data)) as im:
        mode = im.mode
        if mode in ("L", "LA", "RGB", "RGBA"):
            pass
        elif mode == "1":
            im = im.convert("L")
        elif mode in ("P", "PA"):
            im = im.convert("RGBA" if mode == "PA" or "transparency" in im.info else "RGB")
        elif mode in ("CMYK", "YCbCr"):
            im = im.convert("RGB")
        elif mode == "I" or mode.startswith("I;16"):
            import numpy as np
            samples = np.asarray(im).astype(np.int64) >> 8
            return np.clip(samples, 0, 255).astype(np.uint8).tobytes(), (im.height, im.width, 1)
        else:
            raise ValueError("unsupported pixel format %r (pynet reads grey, grey+alpha, RGB, RGBA, "
                             "palette and 16-bit grey images)" % mode)
        return im.tobytes(), (im.height, im.width, len(im.getbands()))


def problem(e):
    """The problem dict (see decode_all) for an exception raised by decode."""
    if isinstance(e, FileNotFoundError):
        return {"kind": "missing", "message": str(e)}
    return {"kind": "decode", "message": "%s: %s" % (type(e).__name__, e)}


def decode_all(paths, shape, sink):
    """Decode each of ``paths`` in turn and hand ``sink(i, pixels)`` the pixels of the i-th, until
    one fails or differs from ``shape`` (height, width, channels). Returns None when all are done,
    else (i, problem) for the first failure; problem is a dict with "kind" ("missing", "decode" or
    "shape") and "message" or "shape"."""
    shape = tuple(shape)
    for i, path in enumerate(paths):
        try:
            pixels, got = decode(path)
        except (MemoryError, KeyboardInterrupt):
            raise
        except Exception as e:   # Pillow signals bad files with many exception types
            return i, problem(e)
        if got != shape:
            return i, {"kind": "shape", "shape": list(got)}
        sink(i, pixels)
    return None


def _worker():
    load_pillow()
    stdin, out = sys.stdin.buffer, sys.stdout.buffer
    shape = json.loads(stdin.readline())["shape"]
    paths = [json.loads(line) for line in stdin]

    batch, count = bytearray(), 0

    def flush():
        nonlocal batch, count
        if count:
            out.write(b"+" + struct.pack("<I", count))
            out.write(batch)
            batch, count = bytearray(), 0

    def sink(i, pixels):
        nonlocal count
        batch.extend(pixels)
        count += 1
        if count == 256:
            flush()

    failure = decode_all(paths, shape, sink)
    flush()
    if failure is not None:
        report = json.dumps(failure[1]).encode("utf-8")
        out.write(b"!" + struct.pack("<I", len(report)) + report)
    out.flush()


if __name__ == "__main__":
    _worker()
