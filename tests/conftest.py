"""Shared test set-up: the repository root on sys.path, and common helpers."""

from __future__ import annotations

import pathlib
import sys
import warnings

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

FIXTURES = ROOT / "fixtures"


@pytest.fixture(scope="session")
def onnx_fixtures() -> pathlib.Path:
    """The shipped ONNX fixture models."""
    return FIXTURES / "models" / "onnx"


@pytest.fixture(scope="session")
def node_testcases():
    """The ONNX node conformance cases shipped in the onnx package, by name."""
    from onnx.backend.test.case.node import collect_testcases

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {c.name: c for c in collect_testcases(None)}


def pytest_collection_modifyitems(config, items):
    try:
        import torch

        has_cuda = torch.cuda.is_available()
    except ImportError:
        has_cuda = False
    if has_cuda:
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


def _fixture_digest() -> str:
    import hashlib

    h = hashlib.sha256()
    for path in sorted((FIXTURES / "models").rglob("*")):
        if path.is_file():
            h.update(str(path.relative_to(FIXTURES)).encode())
            h.update(path.read_bytes())
    return h.hexdigest()


def pytest_sessionstart(session):
    if not hasattr(session.config, "workerinput"):  # the controller (or a run without xdist)
        session.config._fixture_digest = _fixture_digest()


def pytest_sessionfinish(session, exitstatus):
    before = getattr(session.config, "_fixture_digest", None)
    if before is not None and _fixture_digest() != before:
        # Tests must never write into the shipped fixtures (sources are read-only to crossgraph).
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
        print("\nERROR: the test run modified files under fixtures/models", file=sys.stderr)
