"""Decoding many image files fast: in parallel worker processes (each runs ``_decode.py`` on a
contiguous share, writing straight into one shared pixel buffer), or in this process for short
lists; the first image that fails is reported by path and list line."""
import json
import os
import struct
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np

from .._progress import Progress, progress_enabled
from . import _decode
from ._common import DataFileError, read_exact

PARALLEL_MIN = 2000   # below this many images, starting worker processes costs more than it saves
_WORKER = str(Path(_decode.__file__).resolve())


def default_workers():
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return max(1, min(cores, 8))


def _decode_images(paths, lines, list_path, workers, progress):
    """The pixels of every image, as uint8 (n, height·width·channels) interleaved, and the shape."""
    n = len(paths)
    _decode.load_pillow()
    try:
        first, shape = _decode.decode(paths[0])
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as e:
        _raise((0, _decode.problem(e)), paths, lines, list_path, None)
    size = len(first)
    pixels = np.empty((n, size), dtype=np.uint8)
    flat = memoryview(pixels).cast("B")
    flat[:size] = first

    workers = default_workers() if workers is None else workers   # checked by _check_workers
    bar = Progress(n, "decode", unit="img", enabled=progress_enabled(progress) and n >= PARALLEL_MIN)
    try:
        done, failure = 1, None
        if workers > 1 and n >= PARALLEL_MIN and sys.executable:
            done, failure = _decode_in_workers(paths, shape, pixels, workers, bar)
        if done < n and failure is None:   # decode here: a short list, or no worker could start

            def sink(i, data):
                flat[(start + i) * size:(start + i + 1) * size] = data
                if i % 512 == 511:
                    bar.update(start + i + 1)

            start = done
            failure = _decode.decode_all(paths[start:], shape, sink)
            if failure is not None:
                failure = (start + failure[0], failure[1])
        bar.update(n)
    finally:
        bar.close()
    if failure is not None:
        _raise(failure, paths, lines, list_path, shape)
    return pixels, shape


def _decode_in_workers(paths, shape, pixels, workers, bar):
    """Decode paths[1:] in worker processes, each a contiguous share, straight into ``pixels``.
    Returns (images done, None) or (images done, (index, problem)) for the first image that failed.
    If no worker can be started it returns (1, None), and the caller decodes in this process."""
    n, size = len(paths), pixels.shape[1]
    flat = memoryview(pixels).cast("B")
    bounds = [1 + (n - 1) * k // workers for k in range(workers + 1)]
    env = dict(os.environ)
    pil_parent = os.path.dirname(os.path.dirname(_pillow_file()))
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [pil_parent, env.get("PYTHONPATH")]))
    jobs = []
    try:
        for a, b in zip(bounds[:-1], bounds[1:]):
            if a < b:
                errors = tempfile.TemporaryFile()
                try:
                    proc = subprocess.Popen([sys.executable, _WORKER], stdin=subprocess.PIPE,
                                            stdout=subprocess.PIPE, stderr=errors, env=env)
                except OSError:
                    errors.close()
                    return 1, None
                jobs.append({"proc": proc, "errors": errors, "a": a, "b": b, "done": 0, "failure": None})

        def run(job):
            proc, a, b = job["proc"], job["a"], job["b"]
            try:
                head = json.dumps({"shape": list(shape)}) + "\n"
                proc.stdin.write((head + "".join(json.dumps(p) + "\n" for p in paths[a:b])).encode("utf-8"))
                proc.stdin.close()
                i = a
                while i < b:
                    frame = proc.stdout.read(5)
                    if len(frame) != 5:
                        job["failure"] = (i, {"kind": "crash"})
                        return
                    count = struct.unpack("<I", frame[1:])[0]
                    if frame[:1] == b"+" and i + count <= b:
                        read_exact(proc.stdout, flat[i * size:(i + count) * size], paths[i], "decoded pixels")
                        i += count
                        job["done"] += count
                    elif frame[:1] == b"!":
                        job["failure"] = (i, json.loads(proc.stdout.read(count)))
                        return
                    else:
                        job["failure"] = (i, {"kind": "crash", "message": "garbled output"})
                        return
            except (OSError, ValueError) as e:   # a broken pipe or short read: the worker died
                job["failure"] = (a + job["done"], {"kind": "crash", "message": str(e)})

        threads = [threading.Thread(target=run, args=(job,), daemon=True) for job in jobs]
        for t in threads:
            t.start()
        for t in threads:
            while t.is_alive():
                t.join(0.1)
                bar.update(1 + sum(job["done"] for job in jobs))
        bar.update(1 + sum(job["done"] for job in jobs))
        failures = [job["failure"] for job in jobs if job["failure"] is not None]
        for job in jobs:
            if job["failure"] is not None and job["failure"][1]["kind"] == "crash":
                job["proc"].kill()
                job["proc"].wait()
                job["errors"].seek(0)
                tail = job["errors"].read()[-2000:].decode("utf-8", "replace").strip()
                job["failure"][1]["message"] = "%s (exit status %s)%s" % (
                    job["failure"][1].get("message", "it stopped"), job["proc"].returncode,
                    ": " + tail if tail else "")
        return 1 + sum(job["done"] for job in jobs), min(failures, key=lambda f: f[0]) if failures else None
    finally:
        for job in jobs:
            if job["proc"].poll() is None:
                job["proc"].kill()
            job["proc"].wait()
            for stream in (job["proc"].stdin, job["proc"].stdout):
                if stream and not stream.closed:
                    stream.close()
            job["errors"].close()


def _pillow_file():
    import PIL
    return PIL.__file__


def _raise(failure, paths, lines, list_path, shape):
    i, problem = failure
    where = "line %d of %s" % (lines[i], list_path) if lines is not None else "in %s" % list_path
    kind = problem["kind"]
    if kind == "missing":
        raise FileNotFoundError("image not found: %s (%s; it disappeared while loading)" % (paths[i], where))
    if kind == "shape":
        def describe(s):
            return "%dx%d with %d channel%s" % (s[1], s[0], s[2], "" if s[2] == 1 else "s")
        raise ValueError("%s: %s is %s, but the first image, %s, is %s; all images in a list must have the "
                         "same size" % (where, paths[i], describe(problem["shape"]), paths[0], describe(shape)))
    if kind == "decode":
        raise DataFileError(paths[i], "cannot read this image (%s): %s" % (where, problem["message"]))
    raise RuntimeError("an image-decoding worker process failed on %s (%s): %s"
                       % (paths[i], where, problem.get("message", "")))
