"""Fetching MNIST and CIFAR-10 from their canonical public sources, with checksum verification.

Every file is streamed into a temporary file next to its destination and renamed into place only
once its checksum matches, so an interrupted or corrupted download never leaves a partial file
under the real name. Files already present are verified, not fetched again; a present file that
does not match is reported and left alone, never overwritten.

The sources can be overridden (``mirror=`` / ``--mirror URL``, or $PYNET_MNIST_MIRROR and
$PYNET_CIFAR10_MIRROR): a base URL to which the file names are appended.
"""
import contextlib
import errno
import gzip
import hashlib
import http.client
import os
import re
import shutil
import ssl
import tarfile
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from .._progress import Progress, progress_enabled
from . import _cifar10
from ._common import (ChecksumError, DataFileError, DownloadError, atomic_file, download_root,
                      local_error_reason)


# The MD5s are the published ones (torchvision checks the same); the SHA-256s of the .gz files and
# of their content are the values independent projects pin (see ../shared/data/README.md).
SOURCES = {
    "mnist": {
        # https only: the plain-http yann.lecun.com was dropped (a man in the middle could feed it anything up
        # to the size cap; the MD5 would refuse it, but not before it was fetched)
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "https://storage.googleapis.com/cvdf-datasets/mnist/"],
        "files": [
            {"name": "train-images-idx3-ubyte.gz", "size": 9912422, "md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "raw_sha256": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
            {"name": "train-labels-idx1-ubyte.gz", "size": 28881, "md5": "d53e105ee54ea40749a09fcbcd1e9432",
             "raw_sha256": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
            {"name": "t10k-images-idx3-ubyte.gz", "size": 1648877, "md5": "9fb629c4189551a2d022fa330f9573f3",
             "raw_sha256": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
            {"name": "t10k-labels-idx1-ubyte.gz", "size": 4542, "md5": "ec29112dd5afa0611ce80d1b7f02629c",
             "raw_sha256": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        ],
    },
    "cifar10": {
        "mirrors": ["https://www.cs.toronto.edu/~kriz/"],
        "archive": {"name": "cifar-10-binary.tar.gz", "size": 170052171, "md5": "c32a1d4ab5d03f1284b67883e8d87530",
                    "folder": "cifar-10-batches-bin"},
        "members": _cifar10.FILES["train"] + _cifar10.FILES["test"] + [_cifar10.META],
    },
}


def mirrors(name, mirror=None):
    """The base URLs to try for dataset ``name``: ``mirror`` if given, else $PYNET_<NAME>_MIRROR,
    else the canonical sources."""
    chosen = mirror or os.environ.get("PYNET_%s_MIRROR" % name.upper())
    bases = [chosen] if chosen else SOURCES[name]["mirrors"]
    return [b if b.endswith("/") else b + "/" for b in bases]


def download(name, root=None, *, mirror=None, progress=None):
    """Fetch dataset ``name`` ("mnist" or "cifar10") into ``root`` (default: $PYNET_DATA/<name> if
    PYNET_DATA is set, else ~/.cache/pynet/<name>), verifying every file against its published
    checksum. Returns (root, report): report lists (file, what happened) for each file."""
    if name not in SOURCES:
        raise ValueError("unknown dataset %r: download knows 'mnist' and 'cifar10'" % (name,))
    root = Path(root).expanduser() if root is not None else download_root(name)
    if root.exists() and not root.is_dir():
        raise NotADirectoryError("cannot download into %s: it is a file, not a folder" % root)
    created = not root.exists()
    with _writing(root):
        root.mkdir(parents=True, exist_ok=True)
    _clean_stale_parts(root)
    show = progress_enabled(progress)
    try:
        if name == "mnist":
            return root, _download_mnist(root, mirrors(name, mirror), show)
        return root, _download_cifar10(root, mirrors(name, mirror), show)
    except BaseException:
        if created and not any(root.iterdir()):
            root.rmdir()   # leave no trace of a download that fetched nothing
        raise


def _digest(path, algorithm, opener=open):
    h = hashlib.new(algorithm)
    with opener(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _download_mnist(root, bases, show):
    report = []
    for spec in SOURCES["mnist"]["files"]:
        name = spec["name"]
        target, raw = root / name, root / name[:-3]
        if target.exists():
            got = _digest(target, "md5")
            if got != spec["md5"]:
                raise ChecksumError("%s is already there but its MD5 is %s, not the published %s; it was left "
                                    "untouched. Move or delete it and run the download again." % (target, got, spec["md5"]))
            report.append((name, "already present, MD5 verified"))
            continue
        if raw.exists():
            got = _digest(raw, "sha256")
            if got != spec["raw_sha256"]:
                raise ChecksumError("%s is already there but its SHA-256 is %s, not the published %s; it was "
                                    "left untouched. Move or delete it and run the download again."
                                    % (raw, got, spec["raw_sha256"]))
            report.append((raw.name, "already present (uncompressed), SHA-256 verified"))
            continue
        with _writing(target), atomic_file(target, durable=True) as out:
            url = _fetch(name, bases, out, spec, show, root)
        if _digest(target, "sha256", gzip.open) != spec["raw_sha256"]:   # belt and braces
            target.unlink()
            raise ChecksumError("%s from %s decompresses to the wrong content; it was deleted" % (name, url))
        report.append((name, "downloaded from %s, MD5 verified" % url))
    return report


def _download_cifar10(root, bases, show):
    spec = SOURCES["cifar10"]
    wanted = [m for m in spec["members"] if _cifar10.find_file(root, m) is None]
    if not wanted:
        return [(m, "already present") for m in spec["members"]]
    archive = spec["archive"]
    # The archive (163 MB) goes to an anonymous temporary file in root, gone when closed.
    with _writing(root / archive["name"]), tempfile.TemporaryFile(dir=root) as tmp:
        url = _fetch(archive["name"], bases, tmp, archive, show, root)
        tmp.seek(0)
        try:
            with tarfile.open(fileobj=tmp, mode="r:gz") as tar:
                for member_name in wanted:
                    path = "%s/%s" % (archive["folder"], member_name)
                    try:
                        member = tar.getmember(path)
                    except KeyError:
                        raise DataFileError(url, "the archive has no %s" % path) from None
                    if not member.isfile():
                        raise DataFileError(url, "%s in the archive is not a regular file" % path)
                    with tar.extractfile(member) as src, atomic_file(root / member_name, durable=True) as dst:
                        shutil.copyfileobj(src, dst, 1 << 20)
        except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as e:
            raise DataFileError(url, "cannot unpack the archive (%s)" % e) from None
    return [(m, "extracted from %s (MD5 verified)" % url if m in wanted else "already present")
            for m in spec["members"]]


# What a failing network or server raises. Other OSErrors (disk full, permissions) are local and propagate.
_NETWORK_ERRORS = (urllib.error.URLError, http.client.HTTPException, ConnectionError, TimeoutError, ssl.SSLError)


def _fetch(name, bases, out, spec, show, dest):
    """Stream ``name`` from the first base URL that serves it with the right MD5 into the open
    binary file ``out``; returns the URL used. Raises DownloadError if no source could be reached,
    ChecksumError if sources answered but with the wrong content. ``dest`` is the folder the file is
    for, named in the messages."""
    md5, size = spec["md5"], spec["size"]
    failures, mismatches, answered = [], [], False
    for base in bases:
        url = urllib.parse.urljoin(base, name)
        out.seek(0)
        out.truncate()
        try:
            got = _stream(url, out, name, show, size, Path(dest) / name)
        except _TooBig as e:
            mismatches.append("%s %s" % (url, e))
            continue
        except _Answered as e:   # the server answered, then fell short: not an offline machine
            answered = True
            failures.append((url, str(e)))
            continue
        except _NETWORK_ERRORS as e:
            failures.append((url, _reason(e)))
            continue
        if got == md5:
            return url
        mismatches.append("%s has MD5 %s, not the published %s" % (url, got, md5))
    out.seek(0)
    out.truncate()
    if mismatches:
        raise ChecksumError("download of %s failed the checksum test, so nothing was kept: %s"
                            % (name, "; ".join(mismatches + ["%s: %s" % f for f in failures])))
    by_reason = {}
    for url, reason in failures:
        by_reason.setdefault(reason, []).append(urllib.parse.urlsplit(url).netloc or url)
    tried = "; ".join("%s (%s)" % (", ".join(hosts), reason) for reason, hosts in by_reason.items())
    hint = "Try again, copy" if answered else "Are you offline? Copy"
    raise DownloadError("cannot download %s from %s. %s the file into %s by hand, or name "
                        "another source with --mirror URL" % (name, tried, hint, dest))


def _reason(e):
    if isinstance(e, urllib.error.HTTPError):
        return "HTTP %d %s" % (e.code, e.reason)
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__


class _TooBig(Exception):
    """The server sent more than the file's published size: stopped there."""


class _Answered(ConnectionError):
    """The server answered but the transfer did not complete (cut off, or past the deadline)."""


def deadline():
    """Seconds one file's download may take in all ($PYNET_DOWNLOAD_DEADLINE, default 1800)."""
    try:
        return max(1.0, float(os.environ.get("PYNET_DOWNLOAD_DEADLINE", "1800")))
    except ValueError:
        raise ValueError("PYNET_DOWNLOAD_DEADLINE should be a number of seconds, got %r"
                         % os.environ["PYNET_DOWNLOAD_DEADLINE"]) from None


def _stream(url, out, name, show, size, where):
    """Copy ``url`` into ``out``, at most ``size`` bytes and within deadline() seconds in all (each
    socket read also times out after 30 s); returns the MD5 of what was received."""
    request = urllib.request.Request(url, headers={"User-Agent": "pynet-datasets"})
    h = hashlib.md5()
    limit = deadline()
    end = time.monotonic() + limit
    with urllib.request.urlopen(request, timeout=min(30.0, limit)) as response:
        total = response.length or 0
        if total > size:
            raise _TooBig("announces %d bytes, more than the file's %d; nothing was fetched" % (total, size))
        bar = Progress((total or size) // 1024, name, unit="kB", enabled=show)
        done = 0
        try:
            while True:
                if time.monotonic() > end:
                    raise _Answered("did not finish within the %g s per-file deadline (%d of %d bytes came; "
                                    "set PYNET_DOWNLOAD_DEADLINE to allow more)" % (limit, done, size))
                block = response.read1(1 << 16)   # one socket read: a trickling server cannot stall us
                if not block:
                    break
                if done + len(block) > size:
                    raise _TooBig("sent more than the file's %d bytes; stopped there, nothing was kept" % size)
                _write(out, block, name, where)
                h.update(block)
                done += len(block)
                bar.update(done // 1024)
        finally:
            bar.close()
        if total and done != total:
            raise _Answered("the connection closed after %d of %d bytes" % (done, total))
    out.flush()
    return h.hexdigest()


def _write(out, block, name, where):
    try:
        out.write(block)
    except OSError as e:
        raise _local_error(e, "cannot write the download of %s into %s" % (name, where)) from None


def _local_error(e, what):
    return OSError(e.errno, "%s: %s" % (what, local_error_reason(e)))


@contextlib.contextmanager
def _writing(path):
    """Local write failures under ``path`` (full disk, read-only file system, ...) as an OSError naming it."""
    try:
        yield
    except OSError as e:
        if isinstance(e, _NETWORK_ERRORS) or not e.errno or "cannot write the download" in str(e):
            raise
        raise _local_error(e, "cannot write %s" % path) from None


_STALE_PART = re.compile(r"^\..+\.[0-9a-f]{8}\.part$")   # atomic_file's temporary names (temp_name)
STALE_AFTER = 3600   # seconds without a write after which a .part file is a dead download's


def _clean_stale_parts(root):
    """Delete temporary files of our own naming left in ``root`` by a download that was killed: only
    names temp_name makes, for the files a download writes, untouched for STALE_AFTER seconds."""
    ours = {spec["name"] for spec in SOURCES["mnist"]["files"]} | set(SOURCES["cifar10"]["members"])
    now = time.time()
    for p in root.iterdir():
        if _STALE_PART.match(p.name) and p.name[1:].rsplit(".", 2)[0] in ours:
            with contextlib.suppress(OSError):
                if p.is_file() and now - p.stat().st_mtime > STALE_AFTER:
                    p.unlink()
