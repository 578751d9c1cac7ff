"""Fixtures of the rt tests."""
from __future__ import annotations

import pytest
import torch


@pytest.fixture(scope="package", autouse=True)
def one_torch_thread():
    """Real-time inference of tiny blocks runs on one intra-op thread (as ``stemstream live`` does):
    on a loaded 2-core machine several threads per tiny matmul are ~30x slower."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="package")
def jack():
    """The ``jack`` (JACK-Client) module, with a JACK server up: a running one or a private one."""
    from tests.rt.jack_server import jack_server

    with jack_server():
        import jack as jack_client
        yield jack_client
