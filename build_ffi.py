"""build_ffi.py — builds pynet's C core into the extension module ``pynet._core`` with cffi's
out-of-line API mode.

The cdef is ``csrc/pynet_api.h`` itself (it is kept free of preprocessor lines for this), and the
extension is compiled against ``csrc/pynet.h``, so any drift between what Python is told and what
C implements is a compile error. setup.py picks this up through ``cffi_modules``; for development,
``make`` (``python setup.py build_ext --inplace``) builds it next to the sources.

Flags: optimised (-O3), IEEE arithmetic kept exact (no -ffast-math; -ffp-contract=off so the
compiler never fuses a*b+c behind our back and results match a NumPy reference to the last bit
where the order of operations is the same), no -march=native: wide vector code is chosen at run
time inside the kernels. OpenMP is used when the compiler supports it (PYNET_OPENMP=0 turns it off).
"""
import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

from cffi import FFI

HERE = Path(__file__).resolve().parent
CSRC = HERE / "csrc"


def _compiler_accepts(flags):
    """True if the C compiler builds and links a small OpenMP program with `flags`."""
    cc = os.environ.get("CC") or sysconfig.get_config_var("CC") or "cc"
    cc = cc.split()
    if not shutil.which(cc[0]):
        return False
    src = "#include <omp.h>\nint main(void) { return omp_get_max_threads() > 0 ? 0 : 1; }\n"
    with tempfile.TemporaryDirectory() as tmp:
        c_file = Path(tmp, "t.c")
        c_file.write_text(src)
        try:
            result = subprocess.run(cc + flags + [str(c_file), "-o", str(Path(tmp, "t"))],
                                    capture_output=True, timeout=60)
        except (OSError, subprocess.SubprocessError):
            return False
        return result.returncode == 0


def openmp_flags():
    if os.environ.get("PYNET_OPENMP", "1") == "0" or sys.platform == "win32":
        return []
    return ["-fopenmp"] if _compiler_accepts(["-fopenmp"]) else []


def make_ffibuilder():
    ffi = FFI()
    ffi.cdef((CSRC / "pynet_api.h").read_text())
    omp = openmp_flags()
    sanitize = os.environ.get("PYNET_SANITIZE", "").split()   # `make asan-pytest`: e.g. -fsanitize=address
    compile_args = ["-O3", "-std=gnu11", "-ffp-contract=off", "-fno-strict-aliasing"] + omp
    if sys.platform == "win32":
        compile_args = ["/O2"]
    # setuptools wants sources relative to setup.py's folder.
    sources = sorted(str(p.relative_to(HERE)) for p in CSRC.glob("*.c"))
    ffi.set_source(
        "pynet._core",
        '#include "pynet.h"',
        sources=sources,
        include_dirs=[str(CSRC.relative_to(HERE))],
        extra_compile_args=compile_args + sanitize,
        extra_link_args=omp + sanitize + (["-lm"] if sys.platform != "win32" else []),
    )
    return ffi


ffibuilder = make_ffibuilder()

if __name__ == "__main__":
    ffibuilder.compile(tmpdir=str(HERE / "build" / "cffi"), verbose=True)
