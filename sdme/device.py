"""The one way SDME picks a torch device: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""

from __future__ import annotations

from typing import Any


class DeviceError(ValueError):
    """A device that does not exist here (e.g. ``cuda`` on a machine without a GPU)."""


def resolve_device(name: Any = "auto") -> Any:
    """The ``torch.device`` that ``name`` means on this machine.

    ``"auto"`` (or None) is the first CUDA device when torch sees one, else the CPU.

    Raises:
        DeviceError: an unparseable name, or a CUDA device that is not available.
    """
    import torch

    if name is None or str(name) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except (RuntimeError, TypeError) as exc:
        raise DeviceError(f"unknown device {name!r}; use auto, cpu, cuda or cuda:N") from exc
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise DeviceError(f"device {str(name)!r} requested but CUDA is not available here; "
                              "use --device cpu (or auto)")
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise DeviceError(f"device {str(name)!r} requested but only "
                              f"{torch.cuda.device_count()} CUDA device(s) exist")
    elif device.type != "cpu":
        raise DeviceError(f"device {str(name)!r} is not supported; use auto, cpu, cuda or cuda:N")
    return device


__all__ = ["DeviceError", "resolve_device"]
