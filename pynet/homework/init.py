"""``python -m pynet homework init DIR``: write a homework folder."""
import os

from .._files import atomic_file
from .templates import FILES


def init(folder, force=False):
    """Write classifier.py, tryhw4.py and README.md into folder (created if missing). Existing files
    are refused, naming them, unless force. Returns the paths written."""
    folder = os.path.abspath(folder)
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise FileExistsError("homework init: %s exists and is not a folder" % folder)
    paths = [os.path.join(folder, name) for name in FILES]
    present = [p for p in paths if os.path.exists(p)]
    if present and not force:
        raise FileExistsError("homework init: %s already exist%s; pass --force to overwrite"
                              % (", ".join(present), "s" if len(present) == 1 else ""))
    os.makedirs(folder, exist_ok=True)
    for path, text in zip(paths, FILES.values()):
        _write(path, text)
    return paths


def _write(path, text):
    """Write text to path through pynet's one atomic writer, so a reader never sees half a file."""
    with atomic_file(path, durable=True) as f:
        f.write(text.encode("utf-8"))
