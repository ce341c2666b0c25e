# pynet's development tasks. `make` builds the C extension in place, `make test` runs every test
# (the C test under AddressSanitizer + UBSan, then pytest), `make bench` the speed benchmarks
# (bench.py: steps and GEMM against NumPy and PyTorch; bench_fit.py: the MNIST fit against scikit-learn and PyTorch;
# bench_diagnostics.py: what diagnostics while training cost).
PYTHON ?= python3
CC ?= cc
SANITIZE = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CTEST_CFLAGS = -O1 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -ffp-contract=off -fopenmp $(SANITIZE)
CSOURCES = $(wildcard csrc/*.c)
CHEADERS = $(wildcard csrc/*.h)
EXT = pynet/_core.abi3.so

.PHONY: all build test ctest pytest asan-pytest fuzz bench bench-data clean

all: build

build: $(EXT)

$(EXT): $(CSOURCES) $(CHEADERS) build_ffi.py
	$(PYTHON) setup.py -q build_ext --inplace

tests/c/test_core: tests/c/test_core.c $(CSOURCES) $(CHEADERS)
	$(CC) $(CTEST_CFLAGS) -Icsrc -o $@ tests/c/test_core.c $(CSOURCES) -lm

ctest: tests/c/test_core
	ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1 ./tests/c/test_core

pytest: build
	$(PYTHON) -m pytest

test: ctest pytest

# The Python suite's core tests against an ASan+UBSan build of the extension (issue 10). The build goes to
# build/asan (the in-place pynet/_core.abi3.so is untouched); python -P keeps the checkout's pynet off
# sys.path so the sanitized copy is the one imported; libasan is preloaded because python itself is not
# built with it. Leak detection is off: CPython's own allocations at exit are not ours. The RSS-flatness test
# is left out: ASan's quarantine holds freed memory by design. 1,159 tests (33 s in a fresh-clone CI run,
# the sanitized build not counted; 2026-12-02, 2-core machine).
ASAN_DIR = build/asan
ASAN_TESTS ?= tests/test_core.py tests/test_gemm.py tests/test_gemm_f32.py tests/test_io.py tests/test_bad_model_files.py tests/test_bad_data_files.py \
              tests/test_nonfinite.py
asan-pytest:
	rm -rf $(ASAN_DIR) && mkdir -p $(ASAN_DIR)
	PYNET_SANITIZE="$(SANITIZE) -O1 -g" $(PYTHON) setup.py -q build_ext --build-lib $(ASAN_DIR) --build-temp $(ASAN_DIR)/tmp
	$(PYTHON) -c "import shutil; shutil.copytree('pynet', '$(ASAN_DIR)/pynet', dirs_exist_ok=True, ignore=shutil.ignore_patterns('*.so', '__pycache__'))"
	LD_PRELOAD="$$($(CC) -print-file-name=libasan.so) $$($(CC) -print-file-name=libubsan.so)" \
	ASAN_OPTIONS=detect_leaks=0:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
	PYTHONPATH=$(ASAN_DIR) $(PYTHON) -P -m pytest -q -p no:cacheprovider -k "not memory_stays_flat" $(ASAN_TESTS)

# The fuzz targets for a longer campaign than the suite's short run (FUZZ_EXAMPLES per target).
FUZZ_EXAMPLES ?= 20000
fuzz: build
	PYNET_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(PYTHON) -m pytest -q -p no:cacheprovider tests/fuzz

# The benchmarks unset OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE for NumPy and scikit-learn themselves (issue 14).
bench: build
	$(PYTHON) benchmarks/bench.py
	$(PYTHON) benchmarks/bench_fit.py
	$(PYTHON) benchmarks/bench_homework.py
	$(PYTHON) benchmarks/bench_diagnostics.py

bench-data: build
	$(PYTHON) benchmarks/bench_datasets.py

clean:
	rm -rf build dist *.egg-info pynet/_core.c pynet/_core*.so pynet/*.so tests/c/test_core .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
