"""`resolve_device`: the one parser of every device option."""

import pytest
import torch

from metarec.core.device import resolve_device
from metarec.core.errors import ConfigError


def test_auto_and_cpu():
    assert resolve_device("cpu") == torch.device("cpu")
    assert resolve_device("auto") == torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.mark.parametrize("name, msg", [("tpu", "not a torch device"), ("gpu0", "not a torch device"),
                                       ("meta", "runs on cpu, cuda or mps")])
def test_unknown_devices_are_config_errors(name, msg):
    with pytest.raises(ConfigError, match=msg):
        resolve_device(name)


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the error raised where there is no CUDA")
def test_cuda_without_cuda_says_so():
    for name in ("cuda", "cuda:1"):
        with pytest.raises(ConfigError, match="sees no CUDA device"):
            resolve_device(name)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_index_out_of_range():
    assert resolve_device("cuda:0").type == "cuda"
    with pytest.raises(ConfigError, match="CUDA device"):
        resolve_device(f"cuda:{torch.cuda.device_count()}")
