"""Issue 10's downloader reproducers (items 10, 11, 12), against a real HTTP server on 127.0.0.1:
an overall per-file deadline, a size cap, https-only defaults, stale .part files cleaned, local write
failures naming the file, and a cut-off transfer not blamed on being offline."""
import http.server
import os
import subprocess
import sys
import threading
import time

import pytest

import pynet.datasets as D
from pynet.datasets import _download

NAME = "train-images-idx3-ubyte.gz"
SIZE = 9912422


@pytest.fixture
def server(monkeypatch):
    """A server whose behaviour for each request is ``behave[0](handler)``."""
    for var in ("http_proxy", "HTTP_PROXY", "https_proxy", "HTTPS_PROXY", "all_proxy", "ALL_PROXY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")
    behave, sent = [None], [0]

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.0"

        def log_message(self, *args):
            pass

        def do_GET(self):
            try:
                behave[0](self, sent)
            except (BrokenPipeError, ConnectionResetError):
                pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield {"url": "http://127.0.0.1:%d/" % httpd.server_address[1], "behave": behave, "sent": sent}
    httpd.shutdown()
    httpd.server_close()


def run_bounded(fn, seconds):
    """fn() in a thread; the test fails (instead of hanging) if it does not end within ``seconds``."""
    out = {}

    def target():
        try:
            out["value"] = fn()
        except BaseException as e:   # noqa: BLE001 - handed back to the test
            out["error"] = e
    t = threading.Thread(target=target, daemon=True)
    t.start()
    t.join(seconds)
    assert not t.is_alive(), "still running after %g s" % seconds
    return out


def test_a_trickling_server_meets_the_overall_deadline(server, tmp_path, monkeypatch):
    def trickle(h, sent):
        h.send_response(200)
        h.send_header("Content-Length", str(SIZE))
        h.end_headers()
        for _ in range(200):   # a byte every 0.2 s: each read is quick, the whole never ends
            h.wfile.write(b"x")
            h.wfile.flush()
            time.sleep(0.2)
    server["behave"][0] = trickle
    monkeypatch.setenv("PYNET_DOWNLOAD_DEADLINE", "1.5")
    start = time.monotonic()
    out = run_bounded(lambda: D.download("mnist", tmp_path / "m", mirror=server["url"]), 20)
    assert isinstance(out.get("error"), D.DownloadError), out
    message = str(out["error"])
    assert NAME in message and "1.5 s per-file deadline" in message and "offline" not in message
    assert time.monotonic() - start < 10


def test_an_oversized_body_is_stopped_at_the_expected_size(server, tmp_path):
    def flood(h, sent):
        h.send_response(200)   # no Content-Length: the body runs until the server closes
        h.end_headers()
        block = b"\0" * (1 << 16)
        for _ in range(50 << 4):   # 50 MB
            h.wfile.write(block)
            sent[0] += len(block)
    server["behave"][0] = flood
    out = run_bounded(lambda: D.download("mnist", tmp_path / "m", mirror=server["url"]), 60)
    assert isinstance(out.get("error"), D.ChecksumError), out
    assert "more than the file's %d bytes" % SIZE in str(out["error"])
    assert server["sent"][0] < 30 << 20   # stopped long before the 50 MB were sent
    assert not (tmp_path / "m").exists()


def test_an_announced_oversized_body_is_not_fetched(server, tmp_path):
    def big(h, sent):
        h.send_response(200)
        h.send_header("Content-Length", str(50 << 20))
        h.end_headers()
    server["behave"][0] = big
    with pytest.raises(D.ChecksumError, match="announces 52428800 bytes, more than the file's 9912422"):
        D.download("mnist", tmp_path / "m", mirror=server["url"])


def test_the_default_mirrors_are_https():
    for name in _download.SOURCES:
        assert all(m.startswith("https://") for m in _download.SOURCES[name]["mirrors"]), name


def test_a_cut_off_transfer_is_not_called_offline(server, tmp_path):
    def short(h, sent):
        h.send_response(200)
        h.send_header("Content-Length", "1000")
        h.end_headers()
        h.wfile.write(b"x" * 10)
    server["behave"][0] = short
    with pytest.raises(D.DownloadError) as e:
        D.download("mnist", tmp_path / "m", mirror=server["url"])
    assert "closed after 10 of 1000 bytes" in str(e.value) and "offline" not in str(e.value)


def test_stale_part_files_of_our_naming_are_cleaned(server, tmp_path):
    root = tmp_path / "m"
    root.mkdir()
    stale = root / (".%s.0123abcd.part" % NAME)
    fresh = root / (".%s.89abcdef.part" % NAME)
    other = root / ".notes.txt.0123abcd.part"   # not a file a download writes
    for p in (stale, fresh, other):
        p.write_bytes(b"half")
    old = time.time() - 2 * _download.STALE_AFTER
    os.utime(stale, (old, old))
    os.utime(other, (old, old))
    server["behave"][0] = lambda h, sent: h.send_error(404)
    with pytest.raises(D.DownloadError):
        D.download("mnist", root, mirror=server["url"])
    assert not stale.exists() and fresh.exists() and other.exists()


def test_a_local_write_failure_names_the_file(server, tmp_path):
    """A real write failure: the file-size limit (RLIMIT_FSIZE, as a full disk would) in a child."""
    script = r'''
import resource, signal, sys, http.server
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
resource.setrlimit(resource.RLIMIT_FSIZE, (100000, 100000))
import pynet.datasets as D
try:
    D.download("mnist", sys.argv[1], mirror=sys.argv[2])
except OSError as e:
    print(type(e).__name__, e)
'''

    def body(h, sent):
        h.send_response(200)
        h.send_header("Content-Length", str(SIZE))
        h.end_headers()
        h.wfile.write(b"\0" * 300000)
    server["behave"][0] = body
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(sys.path))
    out = subprocess.run([sys.executable, "-c", script, str(tmp_path / "m"), server["url"]],
                         capture_output=True, text=True, env=env, timeout=60)
    assert "cannot write the download of %s into" % NAME in out.stdout, out.stdout + out.stderr
    assert str(tmp_path / "m") in out.stdout
    assert not (tmp_path / "m").exists() or list((tmp_path / "m").iterdir()) == []   # nothing half-written kept
