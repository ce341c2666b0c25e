"""Every exception pynet defines, under one base, PynetError (as pynacl does).

Each class also keeps the built-in base it always had (ValueError, FloatingPointError,
ConnectionError), so code that caught those still works. The modules that raise them re-export
them under their old names (pynet.DivergedError, pynet.io.ModelFileError, pynet.datasets.DataFileError, ...)."""

__all__ = ["PynetError", "DivergedError", "FileFormatError", "ModelFileError", "DataFileError",
           "DownloadError", "ChecksumError"]


class PynetError(Exception):
    """The base of every exception pynet defines."""


class DivergedError(PynetError, FloatingPointError):
    """Training stopped because the loss, or a weight after an update, became NaN or infinite.

    ``iteration`` is the 0-based step that went bad, ``loss`` that step's loss (finite when it was a
    weight), ``losses`` the losses of every step up to and including it, ``layer`` the index of the
    layer whose weights became non-finite (None when it was the loss) and ``bad_input`` whether the
    step's batch held NaN or infinite values (the cause then, not the learning rate); ``diagnostics``
    what train_model or fit recorded before (pynet.diagnostics), None when they were not asked for."""

    def __init__(self, message, iteration, loss, losses, layer=None, bad_input=False):
        super().__init__(message)
        self.iteration = iteration
        self.loss = loss
        self.losses = losses
        self.layer = layer
        self.bad_input = bad_input
        self.diagnostics = None


class FileFormatError(PynetError, ValueError):
    """A file exists but is not what it should be. ``path`` is the file, ``problem`` what is wrong."""

    def __init__(self, path, problem):
        super().__init__("%s: %s" % (path, problem))
        self.path = str(path)
        self.problem = problem


class ModelFileError(FileFormatError):
    """A model file exists but cannot be loaded: corrupt, truncated, of another type, or not what
    its metadata says. ``path`` is the file, ``problem`` what is wrong."""


class DataFileError(FileFormatError):
    """A dataset file exists but is not what it should be: corrupt, truncated, in the wrong format,
    or inconsistent with its companion file. ``path`` is the file, ``problem`` what is wrong."""


class DownloadError(PynetError, ConnectionError):
    """A dataset file could not be fetched from any of its sources (offline, or none answered)."""


class ChecksumError(PynetError, ValueError):
    """A file's content does not match its published checksum."""
