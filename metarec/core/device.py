"""Where torch work runs: one parser for every `device` option (the encoder's, the head's).

"auto" means CUDA when torch sees one, else the CPU. Asking for a CUDA device that is not there is
a configuration error raised at once, not a crash deep inside the first forward pass.
"""

from __future__ import annotations

from metarec.core.errors import ConfigError


def resolve_device(name: str):
    """torch.device for "auto", "cpu", "cuda", "cuda:N" or "mps"; ConfigError when it is not usable."""
    import torch

    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except (RuntimeError, TypeError) as e:
        raise ConfigError(f"device {name!r} is not a torch device (expected auto, cpu, cuda or cuda:N)") from e
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: this torch build sees no CUDA device (use cpu or auto)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: only {torch.cuda.device_count()} CUDA device(s) visible")
    elif dev.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r}: MPS is not available here (use cpu or auto)")
    elif dev.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"device {name!r}: metarec runs on cpu, cuda or mps")
    return dev
