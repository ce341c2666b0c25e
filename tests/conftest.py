"""Shared test configuration.

Datasets come from $PYNET_DATA (the repo's CI points it at ../shared/data; so does this file when
the variable is unset and that folder exists). A test that needs a dataset asks for the
``mnist_root`` / ``cifar10_root`` fixture: without the data it is skipped on a developer machine,
and it FAILS under CI (CI=true), so a misconfigured CI can never pass by skipping.
"""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = REPO.parent / "shared" / "data"

if not os.environ.get("PYNET_DATA") and SHARED_DATA.is_dir():
    os.environ["PYNET_DATA"] = str(SHARED_DATA)
os.environ.setdefault("PYNET_PROGRESS", "0")   # tests that check the progress line turn it on


def in_ci():
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def _dataset_root(name, required_file):
    """$PYNET_DATA/<name> if it holds required_file (gzipped or not)."""
    base = os.environ.get("PYNET_DATA")
    root = Path(base) / name if base else None
    if root is None or not any((root / (required_file + ext)).exists() for ext in ("", ".gz")):
        message = "dataset %s not found (set PYNET_DATA to the folder holding %s/)" % (name, name)
        if in_ci():
            pytest.fail(message + " -- required under CI")
        pytest.skip(message)
    return root


@pytest.fixture(scope="session")
def mnist_root():
    return _dataset_root("mnist", "train-images-idx3-ubyte")


@pytest.fixture(scope="session")
def cifar10_root():
    return _dataset_root("cifar10", "data_batch_1.bin")


@pytest.fixture(autouse=True)
def _ctrl_c_starts_afresh():
    """Each test's Ctrl-C is its first: a SIGINT within pynet.checkpoint.AGAIN_SECONDS of one an earlier
    test sent would otherwise abort (a second Ctrl-C soon after one that stopped a fit)."""
    from pynet import checkpoint
    checkpoint._last_stop[0] = None
    yield
    checkpoint._last_stop[0] = None
