"""Which torch device a command runs on: `auto` takes CUDA, then Apple's MPS, then the CPU.

A device that this torch cannot use is one ValueError that says why and what to install, instead
of torch's own AssertionError ("Torch not compiled with CUDA enabled") from deep inside a call.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

DEVICES = ("auto", "cpu", "cuda", "mps")  # and cuda:N for one GPU of several


def mps_available() -> bool:
    import torch

    backend = getattr(torch.backends, "mps", None)
    return bool(backend is not None and backend.is_available())


def check_device(name: str) -> str:
    """`name` if it names a device kind (DEVICES, or cuda:N), else a ValueError listing them."""
    kind, _, index = str(name).partition(":")
    if kind not in DEVICES or (index and (kind != "cuda" or not index.isdigit())):
        raise ValueError(f"unknown device {name!r}; valid: {', '.join(DEVICES)} (or cuda:N)")
    return str(name)


def resolve_device(name: str | torch.device = "auto") -> torch.device:  # noqa: F821
    """The torch.device for `name`: auto is cuda where a GPU is usable, else mps, else cpu."""
    import torch

    if isinstance(name, torch.device):
        name = str(name)
    kind = check_device(name).partition(":")[0]
    if kind == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if mps_available() else "cpu")
    if kind == "cuda" and not torch.cuda.is_available():
        if torch.version.cuda is None:
            raise ValueError(
                f"device {name!r}: this PyTorch ({torch.__version__}) is a CPU-only build; to use a GPU, install a "
                "CUDA build of torch (in this checkout: `rm -rf .venv && make TORCH=torch install`; elsewhere on "
                "Linux: "
                "`pip uninstall -y torch && pip install torch`, or the command PyTorch's install page gives for your "
                "CUDA version), or use --device cpu"
            )
        raise ValueError(
            f"device {name!r}: this PyTorch ({torch.__version__}, CUDA {torch.version.cuda}) sees no GPU; check the "
            "NVIDIA driver (nvidia-smi) and CUDA_VISIBLE_DEVICES, or use --device cpu"
        )
    if kind == "cuda" and ":" in name and int(name.partition(":")[2]) >= torch.cuda.device_count():
        raise ValueError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    if kind == "mps" and not mps_available():
        raise ValueError(
            f"device {name!r}: Apple's Metal (MPS) is not available here; it needs a Mac with Apple silicon and "
            "torch's macOS build; use --device cpu"
        )
    return torch.device(name)


def to_device(x: torch.Tensor, device: torch.device | str) -> torch.Tensor:
    """`x` on `device` without making the host wait: a CPU tensor bound for CUDA goes through pinned
    memory with a non-blocking copy (a plain copy from pageable memory synchronises the stream)."""
    import torch

    device = torch.device(device)
    if x.device == device:
        return x
    if device.type == "cuda" and x.device.type == "cpu":
        return x.pin_memory().to(device, non_blocking=True)
    return x.to(device)
