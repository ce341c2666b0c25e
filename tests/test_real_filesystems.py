"""Issue 10 item 12 on real file systems: a full disk (a 1 MiB tmpfs) and a read-only mount, for
save_model and the downloader. Mounting needs root and a kernel that lets this process mount (a
container may not); otherwise these tests are skipped with the reason."""
import errno
import os
import subprocess

import numpy as np
import pytest

import pynet
import pynet.datasets as D
from pynet import RELU, SOFTMAX, load_model, make_layer, make_model, save_model

from test_download_faults import NAME, SIZE, server  # noqa: F401 - the loopback server fixture


def _mount(args):
    return subprocess.run(["mount"] + args, capture_output=True, text=True)


@pytest.fixture
def tmpfs(tmp_path):
    """A 1 MiB tmpfs at tmp_path/mnt; ``remount_ro()`` makes it read-only. Unmounted afterwards."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root (this runs as uid %d)" % os.geteuid())
    where = tmp_path / "mnt"
    where.mkdir()
    out = _mount(["-t", "tmpfs", "-o", "size=1m", "tmpfs", str(where)])
    if out.returncode:
        pytest.skip("mount is not permitted here: %s" % (out.stderr.strip() or "exit %d" % out.returncode))

    class Mount:
        path = where

        @staticmethod
        def remount_ro():
            out = _mount(["-o", "remount,ro", str(where)])
            assert out.returncode == 0, out.stderr
    try:
        yield Mount
    finally:
        if subprocess.run(["umount", str(where)], capture_output=True).returncode:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


def _model(hidden):
    pynet.set_seed(1)
    return make_model([make_layer(784, hidden, RELU), make_layer(hidden, 10, SOFTMAX)])


def _fill(folder):
    """Fill the file system of folder up to its last byte (unbuffered writes, so nothing is pending)."""
    fd = os.open(folder / "filler", os.O_WRONLY | os.O_CREAT)
    try:
        for size in (65536, 1):
            while True:
                try:
                    os.write(fd, b"\0" * size)
                except OSError as e:
                    assert e.errno == errno.ENOSPC
                    break
    finally:
        os.close(fd)


def test_save_model_on_a_full_disk_keeps_the_old_file(tmpfs):
    path = tmpfs.path / "m.model"
    save_model(_model(4), path)
    before = path.read_bytes()
    _fill(tmpfs.path)
    with pytest.raises(OSError) as info:
        save_model(_model(256), path)   # 1.6 MB of weights: does not fit
    assert info.value.errno == errno.ENOSPC
    assert str(info.value) == "[Errno 28] cannot save the model to %s: the disk is full" % path
    assert path.read_bytes() == before and load_model(path).layers[0].outputs == 4
    assert sorted(os.listdir(tmpfs.path)) == ["filler", "m.model"]   # no temporary file left


def test_save_model_on_a_read_only_file_system_says_so(tmpfs):
    path = tmpfs.path / "m.model"
    save_model(_model(4), path)
    before = path.read_bytes()
    tmpfs.remount_ro()
    with pytest.raises(OSError) as info:
        save_model(_model(8), path)
    assert info.value.errno == errno.EROFS
    assert str(info.value) == "[Errno 30] cannot save the model to %s: the file system is read-only" % path
    assert path.read_bytes() == before


def _body(h, sent):
    h.send_response(200)
    h.send_header("Content-Length", str(SIZE))
    h.end_headers()
    for _ in range(40):   # 2.6 MB: more than the tmpfs holds
        h.wfile.write(b"\0" * 65536)


def test_a_download_onto_a_full_disk_names_the_file_and_says_the_disk_is_full(tmpfs, server):  # noqa: F811
    server["behave"][0] = _body
    root = tmpfs.path / "mnist"
    with pytest.raises(OSError) as info:
        D.download("mnist", root, mirror=server["url"])
    assert info.value.errno == errno.ENOSPC
    # "cannot write the download of NAME into ROOT/NAME: ..." when a block's write fails, "cannot write
    # ROOT/NAME: ..." when the file's creation or last flush does: either way the file and the reason
    message = str(info.value)
    assert message.startswith("[Errno 28] cannot write ") and message.endswith(": the disk is full"), message
    assert str(root / NAME) in message
    assert not root.exists() or list(root.iterdir()) == []   # the partial download is not kept


def test_a_download_into_a_read_only_file_system_says_read_only(tmpfs, server):  # noqa: F811
    server["behave"][0] = _body
    root = tmpfs.path / "mnist"
    root.mkdir()
    tmpfs.remount_ro()
    with pytest.raises(OSError) as info:
        D.download("mnist", root, mirror=server["url"])
    assert info.value.errno == errno.EROFS
    message = str(info.value)
    assert "the file system is read-only" in message and str(root) in message, message
    assert "ermission denied" not in message
    assert list(root.iterdir()) == []
