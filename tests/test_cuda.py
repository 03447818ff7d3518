"""The CUDA path (device choice, half precision, channels-last, tiles). Skipped without a GPU.

Run on a CUDA machine with `pytest -m cuda`.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from mixtask.cli import app
from mixtask.errors import MixtaskError
from mixtask.inference import devices
from mixtask.inference.translator import Translator, probe_image
from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.tensors import psnr_db as psnr
from mixtask.weights import WeightsInfo
from tests.conftest import TINY_CONFIG, make_tiny_model

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU"),
]
VECTOR = (0.0, 1.0, 0.0, 0.6, 0.0)


def translator(**kwargs) -> Translator:
    info = WeightsInfo("tiny.safetensors", TINY_CONFIG, DEFAULT_TASK_SET)
    return Translator(make_tiny_model(), info, **kwargs)


def random_rgb(height: int, width: int) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (height, width, 3), dtype=np.uint8)


def test_auto_device_is_cuda_with_a_checked_precision():
    engine = translator(device="auto")
    assert engine.device.type == "cuda"
    assert engine.precision in ("bf16", "fp16", "fp32")
    if engine.precision != "fp32":
        assert engine.probe_psnr >= devices.MIN_HALF_PSNR


def test_fp32_on_cuda_matches_the_cpu():
    rgb = random_rgb(45, 70)
    on_gpu = translator(device="cuda", precision="fp32")
    on_cpu = translator(device="cpu", precision="fp32")
    weight = on_gpu.net.residual[0][0]
    assert weight.is_cuda and weight.is_contiguous(memory_format=torch.channels_last)
    got, want = on_gpu.translate_array(rgb, VECTOR), on_cpu.translate_array(rgb, VECTOR)
    assert got.shape == rgb.shape and got.dtype == np.uint8
    assert psnr(torch.from_numpy(got) / 255, torch.from_numpy(want) / 255) >= 40  # cuDNN may use TF32


@pytest.mark.parametrize("precision", ["fp16", "bf16"])
def test_half_precision_on_cuda(precision):
    if precision == "bf16" and not devices.cuda_has_bf16():
        pytest.skip("this GPU has no bf16")
    x = probe_image().cuda()
    half = translator(device="cuda", precision=precision)
    full = translator(device="cuda", precision="fp32")
    assert half.net.dtype == devices.dtype_of(precision)
    got = half.translate_tensor(x, VECTOR)
    assert got.is_cuda and got.dtype == torch.float32 and got.shape == x.shape
    assert psnr(got, full.translate_tensor(x, VECTOR)) >= 35


def test_device_index_picks_that_gpu():
    last = torch.cuda.device_count() - 1
    engine = translator(device=f"cuda:{last}", precision="fp32")
    assert engine.device == torch.device("cuda", last)
    assert engine.net.residual[0][0].device == torch.device("cuda", last)
    assert engine.translate_array(random_rgb(17, 33), VECTOR).shape == (17, 33, 3)


def test_invalid_device_index_is_an_error():
    count = torch.cuda.device_count()
    with pytest.raises(MixtaskError, match=f"CUDA device {count} was requested but this machine has {count}"):
        devices.resolve_device(f"cuda:{count}")


def test_tiles_on_cuda_match_untiled():
    rgb = random_rgb(101, 67)
    tiled = translator(device="cuda", precision="fp32", tile=32).translate_array(rgb, VECTOR)
    whole = translator(device="cuda", precision="fp32").translate_array(rgb, VECTOR)
    assert np.abs(tiled.astype(int) - whole.astype(int)).max() <= 2


def test_cli_apply_with_a_device_index(tiny_weights, tmp_path):
    source, target = tmp_path / "in.png", tmp_path / "out.png"
    Image.fromarray(random_rgb(24, 40)).save(source)
    runner = CliRunner()
    ok = runner.invoke(app, ["apply", str(source), "-t", "denoise", "-o", str(target), "-w", str(tiny_weights),
                             "--device", "cuda:0"])  # fmt: skip
    assert ok.exit_code == 0, ok.stderr
    assert Image.open(target).size == (40, 24)
    count = torch.cuda.device_count()
    bad = runner.invoke(app, ["apply", str(source), "-t", "denoise", "-o", str(tmp_path / "x.png"),
                              "-w", str(tiny_weights), "--device", f"cuda:{count}"])  # fmt: skip
    assert bad.exit_code == 1 and f"CUDA device {count} was requested" in bad.stderr
