import os

import pytest
from hypothesis import HealthCheck, settings

# CI runs on 2 cores: a bounded, derandomised profile keeps the suite fast and reproducible;
# LPCHECK_HYPOTHESIS=thorough searches harder.
settings.register_profile(
    "ci",
    max_examples=60,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow],
)
settings.register_profile("thorough", max_examples=1000, deadline=None)
settings.load_profile(os.environ.get("LPCHECK_HYPOTHESIS", "ci"))


# Without CUDA, Triton kernels run in Triton's interpreter (tests/test_fused_triton.py). Triton
# reads the variable when it is imported and when a kernel is defined, and torch.compile may import
# it early, so it is set here, before any test module; it changes nothing for torch's CPU compiler.
if "TRITON_INTERPRET" not in os.environ:
    import torch

    if not torch.cuda.is_available():
        os.environ["TRITON_INTERPRET"] = "1"


# pytest-xdist runs one worker per core: each worker's torch takes its share of the cores, not all
# of them (two workers with two threads each on 2 cores only add OpenMP contention)
if os.environ.get("PYTEST_XDIST_WORKER"):
    import torch

    _workers = int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1"))
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // _workers))


def _cuda():
    try:
        import torch

        return torch.cuda.is_available()
    except ImportError:
        return False


def pytest_collection_modifyitems(config, items):
    if _cuda():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if (
            item.get_closest_marker("gpu") is not None
        ):  # not `in item.keywords`: a checkout folder named gpu is one
            item.add_marker(skip)


@pytest.fixture
def one_thread():
    """Tiny models: more torch threads only add OpenMP contention on a shared 2-core machine."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)
