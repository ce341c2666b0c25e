"""One image file read the way the loaders read a dataset's (``read_image``), and the image shape
behind a row of features (``image_shape``), for code that classifies single images (pynet predict)."""
import math
import os

import numpy as np

from ._common import pixels_to_X
from ._decode import decode
from ._registry import IMAGE_SHAPES  # noqa: F401  re-exported

__all__ = ["IMAGE_SHAPES", "CHANNELS", "image_shape", "read_image"]

# What an image with this many channels is called.
CHANNELS = {1: "greyscale", 2: "greyscale with alpha", 3: "RGB", 4: "RGB with alpha"}

def read_image(path, shape):
    """One image file as a 1-row design matrix (float64 pixels / 255, channel-planar, as the loaders
    give them), checked against ``shape`` (height, width, channels). FileNotFoundError for a missing
    file, IsADirectoryError for a folder, ValueError naming the file for one Pillow cannot read or
    of another size or number of channels."""
    if not os.path.exists(path):
        raise FileNotFoundError("image not found: %s" % path)
    if os.path.isdir(path):
        raise IsADirectoryError("%s is a folder, not an image" % path)
    try:
        pixels, got = decode(path)
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:   # Pillow signals unreadable files with many exception types
        if type(e).__name__ == "UnidentifiedImageError":
            raise ValueError("cannot read the image %s: not an image file Pillow recognises (wrong type, or "
                           "damaged)" % path) from None
        raise ValueError("cannot read the image %s: %s" % (path, e)) from None
    h, w, c = shape
    if tuple(got) != (h, w, c):
        problem = []
        if got[:2] != (h, w):
            problem.append("is %dx%d pixels (width x height) but the model takes %dx%d images" % (got[1], got[0], w, h))
        if got[2] != c:
            problem.append("has %d channel%s (%s) but the model takes %s images"
                           % (got[2], "" if got[2] == 1 else "s", CHANNELS.get(got[2], "?"), CHANNELS[c]))
        raise ValueError("%s %s" % (path, " and ".join(problem)))
    return pixels_to_X(np.frombuffer(pixels, dtype=np.uint8).reshape(1, -1), False, (h, w, c))

def image_shape(features, name=None):
    """(height, width, channels) of the images behind rows of ``features`` values: known for the
    named datasets (IMAGE_SHAPES); otherwise the square greyscale or RGB image with that many values,
    or None."""
    if name in IMAGE_SHAPES:
        return IMAGE_SHAPES[name]
    for channels in (1, 3):
        side = math.isqrt(features // channels)
        if side * side * channels == features:
            return (side, side, channels)
    return None
