"""Where, and in what precision, inference runs (design notes: Performance).

Devices: `auto` is the first CUDA GPU when there is one, else the CPU (Apple's `mps` only when
asked for by name). A device that was asked for but is not there is an error, never a silent
fallback to the CPU.

Precisions: `fp32`, `bf16`, `fp16`: weights and activations are cast; InstanceNorm statistics
are accumulated in fp32. fp16 is refused on the CPU (no fast kernels there). `auto` names a
*candidate* here: bf16 on a CPU that has bf16 dot-product instructions (AVX512-BF16 or AMX;
measured 1.9x faster than fp32 on a Zen 4), bf16 on CUDA GPUs that support it (compute
capability 8.0+), fp16 on older GPUs, fp32 elsewhere. `infer.Translator` keeps a half-precision
candidate only if a probe image stays within `MIN_HALF_PSNR` dB of fp32.
"""

from __future__ import annotations

import contextlib
import platform
import re
from collections.abc import Iterator
from pathlib import Path

import torch

from mixtask.choices import PRECISIONS
from mixtask.errors import MixtaskError

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
SMALL_WORK_PIXELS = 128 * 128  # below this one CPU thread is faster: no waits at thread barriers
MIN_HALF_PSNR = 40.0  # dB against fp32 on the probe image; below it `auto` keeps fp32
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps"
_DEVICE_PATTERN = re.compile(r"^(auto|cpu|mps|cuda)(?::(\d+))?$")


def resolve_device(name: str | torch.device = "auto") -> torch.device:
    """`auto`, `cpu`, `cuda`, `cuda:N` or `mps` -> a torch.device that exists here."""
    if isinstance(name, torch.device):
        name = str(name)
    text = (name or "auto").strip().lower()
    match = _DEVICE_PATTERN.match(text)
    if not match or (match.group(2) is not None and match.group(1) != "cuda"):
        raise MixtaskError(f"unknown device {name!r}; use {DEVICE_HELP}")
    kind, index = match.group(1), match.group(2)
    if kind == "auto":
        return torch.device("cuda", torch.cuda.current_device()) if torch.cuda.is_available() else torch.device("cpu")
    if kind == "cuda":
        return _cuda_device(None if index is None else int(index))
    if kind == "mps" and not _mps_available():
        raise MixtaskError("MPS was requested but this machine has no usable Apple GPU; use --device cpu")
    return torch.device(kind)


def _cuda_device(index: int | None) -> torch.device:
    if not torch.cuda.is_available():
        build = f"CUDA {torch.version.cuda}" if torch.version.cuda else "no CUDA support"
        raise MixtaskError(
            f"CUDA was requested but no CUDA device is available (torch {torch.__version__}, {build}); "
            "use --device cpu or check the driver with nvidia-smi"
        )
    count = torch.cuda.device_count()
    if index is None:
        return torch.device("cuda", torch.cuda.current_device())
    if index >= count:
        raise MixtaskError(
            f"CUDA device {index} was requested but this machine has {count} (use cuda:0..cuda:{count - 1})"
        )
    return torch.device("cuda", index)


def _mps_available() -> bool:
    backend = getattr(torch.backends, "mps", None)
    return bool(backend and backend.is_available())


def cpu_has_fast_bf16() -> bool:
    """True when the CPU has bf16 dot-product instructions (AVX512-BF16 or AMX tiles)."""
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    for check in checks:
        function = getattr(torch.cpu, check, None)
        try:
            if function is not None and function():
                return True
        except RuntimeError:  # private helpers: never let them break inference
            continue
    return False


def cpu_model() -> str:
    """The CPU's model name. Read from /proc/cpuinfo: the stdlib's platform.processor() is empty or just the
    architecture on Linux, and torch does not say."""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


def check_precision(precision: str, device: torch.device) -> str:
    """Validate an explicit precision (or `auto`) for a device; returns it lower-cased."""
    text = (precision or "auto").strip().lower()
    if text not in PRECISIONS:
        raise MixtaskError(f"unknown precision {precision!r}; use {', '.join(PRECISIONS)}")
    if text == "fp16" and device.type == "cpu":
        raise MixtaskError("fp16 is not supported on the CPU (no fast kernels); use --precision bf16 or fp32")
    if text == "bf16" and device.type == "cuda" and not cuda_has_bf16():
        raise MixtaskError(f"this GPU ({torch.cuda.get_device_name(device)}) has no bf16; use --precision fp16 or fp32")
    return text


def auto_candidate(device: torch.device) -> str:
    """The half precision `auto` tries on this device, or `fp32` where none pays off."""
    if device.type == "cpu":
        return "bf16" if cpu_has_fast_bf16() else "fp32"
    if device.type == "cuda":
        return "bf16" if cuda_has_bf16() else "fp16"
    return "fp32"  # MPS: half precision is a choice to make explicitly (--precision fp16)


def cuda_has_bf16() -> bool:
    """Native bf16 (compute capability 8.0+), not the slow emulation older GPUs also accept."""
    try:
        return torch.cuda.is_bf16_supported(including_emulation=False)
    except TypeError:  # torch < 2.4 has no including_emulation (and counted native only)
        return torch.cuda.is_bf16_supported()


def dtype_of(precision: str) -> torch.dtype:
    return DTYPES[precision]


@contextlib.contextmanager
def threads_for(pixels: int, device: torch.device) -> Iterator[None]:
    """Run small CPU work on one thread (process-wide while the block runs).

    Each op of a small image takes microseconds; with two threads every op also waits at a
    barrier for the other thread, which on a busy machine costs milliseconds (measured: the
    96x96 probe took 5.1 s with 2 threads vs 0.05 s with 1 on a loaded 2-core VM).
    """
    before = torch.get_num_threads()
    if device.type != "cpu" or pixels > SMALL_WORK_PIXELS or before == 1:
        yield
        return
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)
