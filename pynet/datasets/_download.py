"""Fetching MNIST and CIFAR-10 from their canonical public sources, with checksum verification.

Every file is streamed into a temporary file next to its destination and renamed into place only
once its checksum matches, so an interrupted or corrupted download never leaves a partial file
under the real name. Files already present are verified, not fetched again; a present file that
does not match is reported and left alone, never overwritten.

The sources can be overridden (``mirror=`` / ``--mirror URL``, or $PYNET_MNIST_MIRROR and
$PYNET_CIFAR10_MIRROR): a base URL to which the file names are appended.
"""
import gzip
import hashlib
import http.client
import os
import shutil
import ssl
import tarfile
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from .._progress import Progress, progress_enabled
from . import _cifar10
from ._common import ChecksumError, DataFileError, DownloadError, atomic_file, download_root


# The MD5s are the published ones (torchvision checks the same); the SHA-256s of the .gz files and
# of their content are the values independent projects pin (see ../shared/data/README.md).
SOURCES = {
    "mnist": {
        "mirrors": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
                    "https://storage.googleapis.com/cvdf-datasets/mnist/",
                    "http://yann.lecun.com/exdb/mnist/"],
        "files": [
            {"name": "train-images-idx3-ubyte.gz", "md5": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
             "raw_sha256": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db"},
            {"name": "train-labels-idx1-ubyte.gz", "md5": "d53e105ee54ea40749a09fcbcd1e9432",
             "raw_sha256": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5"},
            {"name": "t10k-images-idx3-ubyte.gz", "md5": "9fb629c4189551a2d022fa330f9573f3",
             "raw_sha256": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7"},
            {"name": "t10k-labels-idx1-ubyte.gz", "md5": "ec29112dd5afa0611ce80d1b7f02629c",
             "raw_sha256": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2"},
        ],
    },
    "cifar10": {
        "mirrors": ["https://www.cs.toronto.edu/~kriz/"],
        "archive": {"name": "cifar-10-binary.tar.gz", "md5": "c32a1d4ab5d03f1284b67883e8d87530",
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
    root.mkdir(parents=True, exist_ok=True)
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
        with atomic_file(target, durable=True) as out:
            url = _fetch(name, bases, out, spec["md5"], show, root)
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
    with tempfile.TemporaryFile(dir=root) as tmp:
        url = _fetch(archive["name"], bases, tmp, archive["md5"], show, root)
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


def _fetch(name, bases, out, md5, show, dest):
    """Stream ``name`` from the first base URL that serves it with the right MD5 into the open
    binary file ``out``; returns the URL used. Raises DownloadError if no source could be reached,
    ChecksumError if sources answered but with the wrong content. ``dest`` is the folder the file is
    for, named in the messages."""
    failures, mismatches = [], []
    for base in bases:
        url = urllib.parse.urljoin(base, name)
        out.seek(0)
        out.truncate()
        try:
            got = _stream(url, out, name, show)
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
    raise DownloadError("cannot download %s from %s. Are you offline? Copy the file into %s by hand, or name "
                        "another source with --mirror URL" % (name, tried, dest))


def _reason(e):
    if isinstance(e, urllib.error.HTTPError):
        return "HTTP %d %s" % (e.code, e.reason)
    if isinstance(e, urllib.error.URLError):
        return str(e.reason)
    return "%s: %s" % (type(e).__name__, e) if str(e) else type(e).__name__


def _stream(url, out, name, show):
    """Copy ``url`` into ``out``; returns the MD5 of what was received."""
    request = urllib.request.Request(url, headers={"User-Agent": "pynet-datasets"})
    h = hashlib.md5()
    with urllib.request.urlopen(request, timeout=30) as response:
        total = response.length or 0
        bar = Progress(total // 1024, name, unit="kB", enabled=show)
        done = 0
        try:
            for block in iter(lambda: response.read(1 << 16), b""):
                out.write(block)
                h.update(block)
                done += len(block)
                bar.update(done // 1024)
        finally:
            bar.close()
        if total and done != total:
            raise ConnectionError("the connection closed after %d of %d bytes" % (done, total))
    out.flush()
    return h.hexdigest()
