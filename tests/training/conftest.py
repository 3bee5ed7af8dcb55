"""Training tests run torch on one thread: on a shared 2-core machine two OpenMP threads
oversubscribe and make small networks 10x slower."""

import pytest
import torch


@pytest.fixture(autouse=True)
def one_thread():
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(previous)
