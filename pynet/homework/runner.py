"""Running the checks: each in its own forked process with a timeout, so code that raises, never
returns, prints a lot or changes shared state fails only that check. The parent never runs pynet's C
kernels, so forking is safe. Output as text, JSON or Gradescope's results.json."""
import importlib.util
import io
import json
import multiprocessing
import os
import signal
import sys
import time
import traceback

import numpy as np

from .check import CHECKS
from .reference import Failure, fmt

TIMEOUT = 2.0          # seconds per check
BUDGET = 9.0           # seconds for the whole run
PARALLEL = 8         # checks at once

# ---- running the checks ----------------------------------------------------------------------

class _CappedOutput(io.TextIOBase):
    """stdout/stderr for student code: keeps the first few thousand characters, counts the rest."""

    def __init__(self, cap=2000):
        self.cap, self.text, self.count = cap, [], 0

    def write(self, s):
        s = str(s)
        if self.count < self.cap:
            self.text.append(s[: self.cap - self.count])
        self.count += len(s)
        return len(s)

    def writable(self):
        return True


def _jsonable(x):
    if isinstance(x, dict):
        return {k: _jsonable(v) for k, v in x.items()}
    if isinstance(x, np.ndarray):
        return x.tolist()
    if isinstance(x, (list, tuple)):
        return [_jsonable(v) for v in x]
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    return x


def _child(path, index, conn):
    """Run check `index` on the module at `path`; send back a result dict."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.dup2(devnull, 2)
    out = _CappedOutput()
    sys.stdout = sys.stderr = out
    fn_name, name, fn = CHECKS[index]
    result = {"function": fn_name, "check": name, "passed": False}
    try:
        import pynet
        pynet.set_threads(1)
        spec = importlib.util.spec_from_file_location("student_classifier", path)
        mod = importlib.util.module_from_spec(spec)
        try:
            spec.loader.exec_module(mod)
        except BaseException as e:
            raise Failure("%s could not be loaded: %s: %s" % (os.path.basename(path), type(e).__name__, e)) from None
        if not callable(getattr(mod, fn_name, None)):
            raise Failure("%s does not define %s" % (os.path.basename(path), fn_name))
        with np.errstate(all="ignore"):
            fn(mod)
        result["passed"] = True
    except Failure as f:
        result.update(message=f.message, input=_jsonable(f.inp), expected=_jsonable(f.expected),
                      got=_jsonable(f.got), hint=f.hint)
    except BaseException as e:
        tb = traceback.extract_tb(e.__traceback__)
        where = next((fr for fr in reversed(tb) if fr.filename == path), None)
        at = " (%s line %d)" % (os.path.basename(path), where.lineno) if where else ""
        result.update(message="raised %s: %s%s" % (type(e).__name__, str(e)[:300], at))
    if out.count > 10000:
        result["printed"] = out.count
    try:
        conn.send(result)
    finally:
        os._exit(0)


def _died(p):
    """Why a check's process ended without sending a result, in a few words."""
    if p.exitcode is None:
        return "the check's process ended its connection without a result and did not exit"
    if p.exitcode < 0:
        try:
            name = signal.Signals(-p.exitcode).name
        except ValueError:
            name = "signal %d" % -p.exitcode
        if -p.exitcode == signal.SIGKILL:
            return ("the check's process was killed by SIGKILL (from outside it: the system's out-of-memory "
                    "killer, or a user)")
        return "the check's process was killed by %s (a crash in native code: C, ctypes, an extension)" % name
    return "the check's process exited (exit code %s) without a result: does the code call os._exit?" % p.exitcode


def run_checks(path, timeout=TIMEOUT, budget=BUDGET):
    """Every check on the file at path, as a list of result dicts (in CHECKS order)."""
    path = os.path.abspath(path)
    ctx = multiprocessing.get_context("fork")
    start = time.monotonic()
    results = [None] * len(CHECKS)
    pending = list(range(len(CHECKS)))
    running = {}
    while pending or running:
        while pending and len(running) < PARALLEL:
            i = pending.pop(0)
            recv, send = ctx.Pipe(duplex=False)
            p = ctx.Process(target=_child, args=(path, i, send), daemon=True)
            p.start()
            send.close()
            running[i] = (p, recv, time.monotonic())
        time.sleep(0.005)
        for i, (p, recv, t0) in list(running.items()):
            fn_name, name, _ = CHECKS[i]
            res = None
            if recv.poll():
                try:
                    res = recv.recv()
                except (EOFError, OSError):
                    p.join(1)
                    res = {"function": fn_name, "check": name, "passed": False, "message": _died(p)}
            elif not p.is_alive():
                res = {"function": fn_name, "check": name, "passed": False, "message": _died(p)}
            elif time.monotonic() - t0 > timeout:
                p.kill()
                res = {"function": fn_name, "check": name, "passed": False,
                       "message": "did not return within %.1f s (an endless loop?)" % timeout}
            elif time.monotonic() - start > budget:
                p.kill()
                res = {"function": fn_name, "check": name, "passed": False,
                       "message": "not finished when the checker's %.0f s budget for all checks ran out "
                                  "(other checks took their full %.1f s)" % (budget, timeout)}
            if res is not None:
                p.join(1)
                recv.close()
                if res.get("printed"):
                    res["message"] = ((res["message"] + "; ") if res.get("message") else "") + \
                        "printed %d characters, not shown" % res["printed"]
                results[i] = res
                del running[i]
    return results


def format_result(r):
    lines = ["%s  %-16s %s" % ("PASS" if r["passed"] else "FAIL", r["function"], r["check"])]
    if r["passed"] and r.get("message"):   # a pass with a note (it printed a lot)
        lines[0] += "  (%s)" % r["message"]
    if not r["passed"]:
        lines.append("      %s" % r.get("message", ""))
        for key in ("input", "expected", "got"):
            if r.get(key) is not None:
                v = r[key]
                text = ", ".join("%s = %s" % (k, fmt(x)) for k, x in v.items()) if isinstance(v, dict) else fmt(v)
                lines.append("      %-9s %s" % (key + ":", text))
        if r.get("hint"):
            lines.append("      hint:     %s" % r["hint"])
    return "\n".join(lines)


def gradescope(results):
    tests = [{"name": "%s: %s" % (r["function"], r["check"]), "score": 1.0 if r["passed"] else 0.0,
              "max_score": 1.0, "output": "passed" if r["passed"] else format_result(r)} for r in results]
    return {"score": sum(t["score"] for t in tests), "tests": tests}


def main(path="classifier.py", as_json=False, gradescope_path=None, stdout=None):
    stdout = stdout or sys.stdout
    if not os.path.isfile(path):
        print("homework check: %s: no such file (run it in your homework folder, or name the file)" % path,
              file=sys.stderr)
        return 2
    results = run_checks(path)
    passed = sum(r["passed"] for r in results)
    if gradescope_path:
        from .init import _write
        _write(gradescope_path, json.dumps(gradescope(results), indent=1) + "\n")
    if as_json:
        json.dump({"file": os.path.abspath(path), "passed": passed, "total": len(results), "checks": results},
                  stdout, indent=1)
        stdout.write("\n")
    else:
        for r in results:
            print(format_result(r), file=stdout)
        print("%d of %d checks passed%s" % (passed, len(results), "" if passed < len(results) else ": all done"),
              file=stdout)
    return 0 if passed == len(results) else 1
