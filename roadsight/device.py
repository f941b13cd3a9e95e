"""The `device=` setting of every command: checked once, resolved to the device actually used."""

from __future__ import annotations

import re

from roadsight.errors import ConfigError

DEVICE_CHOICES = "auto | cpu | cuda | cuda:N"


def resolve_device_name(device: object = "auto") -> str:
    """`auto|cpu|cuda|cuda:N` -> the device that will be used ("cpu", "cuda", "cuda:1").

    Raises ConfigError naming `device=` for any other value, and for a CUDA device this machine
    does not have (torch is imported only for a CUDA or auto choice).
    """
    name = str(device).strip().lower()
    if name == "cpu":
        return "cpu"
    if name != "auto" and not re.fullmatch(r"cuda(:\d+)?", name):
        raise ConfigError(f"device={device}: unknown device; choose {DEVICE_CHOICES}")
    import torch

    count = torch.cuda.device_count() if torch.cuda.is_available() else 0
    if name == "auto":
        return "cuda" if count else "cpu"
    if not count:
        raise ConfigError(f"device={device}: CUDA is not available on this machine (torch "
                          f"{torch.__version__}); use device=cpu or device=auto")
    index = int(name.partition(":")[2] or 0)
    if index >= count:
        raise ConfigError(f"device={device}: this machine has {count} CUDA device(s), "
                          f"cuda:0..cuda:{count - 1}")
    return name


def set_torch_threads(threads: int | None) -> None:
    """The `threads=` setting of every command: torch's CPU threads in this process (None or 0:
    torch's default, and torch is not imported for it)."""
    if threads:
        import torch

        torch.set_num_threads(threads)
