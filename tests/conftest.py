import os
import warnings

os.environ.setdefault("MPLBACKEND", "Agg")  # figures are drawn off-screen in the tests

import pytest
import torch

import zoo  # noqa: F401  (project Pyro settings)

warnings.filterwarnings("ignore", message=".*ArviZ is undergoing a major refactor.*")

if os.environ.get("PYTEST_XDIST_WORKER"):
    # `make test` runs one worker per core (pytest-xdist): each worker keeps to one intra-op thread, so
    # the workers do not oversubscribe the cores
    torch.set_num_threads(1)

cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@pytest.fixture(scope="module")
def one_thread():
    """Torch on one intra-op thread for a module of small fits: on shared cores the threads cost more
    than they save (``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
