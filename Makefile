# pynet's development tasks. `make` builds the C extension in place, `make test` runs every test
# (the C test under AddressSanitizer + UBSan, then pytest), `make bench` the speed benchmark.
PYTHON ?= python3
CC ?= cc
SANITIZE = -fsanitize=address,undefined -fno-sanitize-recover=all -fno-omit-frame-pointer
CTEST_CFLAGS = -O1 -g -std=gnu11 -Wall -Wextra -Wno-unused-parameter -ffp-contract=off -fopenmp $(SANITIZE)
CSOURCES = $(wildcard csrc/*.c)
CHEADERS = $(wildcard csrc/*.h)
EXT = pynet/_core.abi3.so

.PHONY: all build test ctest pytest bench bench-data clean

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

bench: build
	$(PYTHON) benchmarks/bench.py

bench-data: build
	$(PYTHON) benchmarks/bench_datasets.py

clean:
	rm -rf build dist *.egg-info pynet/_core.c pynet/_core*.so pynet/*.so tests/c/test_core .pytest_cache
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
