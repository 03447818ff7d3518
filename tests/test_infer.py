"""Translator and InferenceNet: devices, precisions, sizes, and sameness with MixNet."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from PIL import Image

from mixtask.errors import MixtaskError
from mixtask.inference import devices
from mixtask.inference.translator import (
    InferenceNet,
    Translator,
    pad_to_multiple,
    probe_image,
)
from mixtask.nets.film import pad_any_size
from mixtask.nets.registry import build_model
from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.tensors import from_uint8
from mixtask.tensors import psnr_db as psnr
from mixtask.weights import WeightsInfo
from tests.conftest import TINY_CONFIG, make_tiny_model

CPU = torch.device("cpu")
VECTOR = (0.0, 1.0, 0.0, 0.6, 0.0)


def tiny_info(provenance: dict | None = None) -> WeightsInfo:
    return WeightsInfo("tiny.safetensors", TINY_CONFIG, DEFAULT_TASK_SET, provenance=provenance or {})


def translator(precision="fp32", **kwargs) -> Translator:
    return Translator(make_tiny_model(), tiny_info(), device="cpu", precision=precision, **kwargs)


def random_rgb(height: int, width: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


# --- devices and precisions ------------------------------------------------------------------


def test_cuda_requested_without_cuda_is_an_error(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    for name in ("cuda", "cuda:1"):
        with pytest.raises(MixtaskError, match="CUDA was requested but no CUDA device is available"):
            devices.resolve_device(name)


def test_auto_device_is_cpu_without_cuda(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.resolve_device("auto") == CPU


@pytest.mark.parametrize("name", ["gpu", "cuda:x", "cpu:1", "tpu"])
def test_unknown_device_names_the_choices(name):
    with pytest.raises(MixtaskError, match="auto, cpu, cuda, cuda:N or mps"):
        devices.resolve_device(name)


def test_fp16_on_cpu_is_refused():
    with pytest.raises(MixtaskError, match="fp16 is not supported on the CPU"):
        translator(precision="fp16")


def test_unknown_precision_lists_the_choices():
    with pytest.raises(MixtaskError, match="auto, fp32, bf16, fp16"):
        translator(precision="int8")


def test_auto_precision_keeps_bf16_only_with_fast_bf16_and_good_probe(monkeypatch):
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)
    chosen = translator(precision="auto")
    assert chosen.precision == "bf16" and chosen.probe_psnr >= devices.MIN_HALF_PSNR
    monkeypatch.setattr(devices, "MIN_HALF_PSNR", 1000.0)  # no half precision could pass this
    assert translator(precision="auto").precision == "fp32"
    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: False)
    assert translator(precision="auto").precision == "fp32"


def test_the_precision_probe_runs_once_per_weights_file_and_machine(monkeypatch, tiny_weights, tmp_path):
    from mixtask.inference import translator as translator_module

    monkeypatch.setattr(devices, "cpu_has_fast_bf16", lambda: True)
    monkeypatch.setenv("MIXTASK_CACHE", str(tmp_path / "cache"))
    calls = []
    real = translator_module.probe_psnr
    monkeypatch.setattr(translator_module, "probe_psnr", lambda *args: calls.append(1) or real(*args))
    built = []
    real_engine = translator_module.engine

    def recorded_engine(model, device, dtype):
        built.append(dtype)
        return real_engine(model, device, dtype)

    monkeypatch.setattr(translator_module, "engine", recorded_engine)
    first = Translator.from_file(tiny_weights)
    assert built == [torch.bfloat16, torch.float32]  # the probe compares the two
    second = Translator.from_file(tiny_weights)
    assert len(calls) == 1 and first.probe_psnr == second.probe_psnr and second.precision == first.precision
    assert built[2:] == [torch.bfloat16]  # the cached verdict: no fp32 engine to build
    monkeypatch.setattr(devices, "MIN_HALF_PSNR", 1000.0)  # the cached figure now fails: fp32 after all
    assert Translator.from_file(tiny_weights).precision == "fp32" and len(calls) == 1
    copy = tmp_path / "copy.safetensors"
    copy.write_bytes(tiny_weights.read_bytes())
    Translator.from_file(copy)  # another file: probed
    (tmp_path / "cache" / translator_module.PROBE_CACHE).write_text("not json")
    Translator.from_file(tiny_weights)  # a broken cache is ignored, not an error
    assert len(calls) == 3


# --- shapes, dtypes, task input ------------------------------------------------------------------


@pytest.mark.parametrize("size", [(17, 33), (1, 1), (5, 300), (64, 48)])
def test_output_size_equals_input(size):
    out = translator().translate_array(random_rgb(*size), VECTOR)
    assert out.shape == (*size, 3) and out.dtype == np.uint8


def test_translate_tensor_keeps_shape_and_range():
    x = torch.rand(2, 3, 21, 30)
    y = translator().translate_tensor(x, VECTOR)
    assert y.shape == x.shape and y.dtype == torch.float32
    assert y.min() >= 0 and y.max() <= 1


def test_translate_tensor_takes_one_vector_per_image():
    model = translator()
    x = torch.rand(1, 3, 24, 24).expand(2, -1, -1, -1)
    both = model.translate_tensor(x, torch.tensor([VECTOR, (0.0,) * 5]))
    assert torch.allclose(both[0], model.translate_tensor(x[:1], VECTOR)[0], atol=1e-5)
    assert torch.allclose(both[1], model.translate_tensor(x[:1], "recon")[0], atol=1e-5)


def test_bad_inputs_are_user_errors():
    model = translator()
    with pytest.raises(MixtaskError, match="uint8 RGB"):
        model.translate_array(random_rgb(8, 8).astype(np.float32), VECTOR)
    with pytest.raises(MixtaskError, match="does not fit"):
        model.translate_array(random_rgb(8, 8), (1.0, 0.0))
    with pytest.raises(MixtaskError, match=r"\[0, 1\]"):
        model.translate_array(random_rgb(8, 8), (2.0, 0, 0, 0, 0))
    with pytest.raises(MixtaskError, match="unknown task"):
        model.translate_array(random_rgb(8, 8), "sharpen=1")


def test_translate_pil_keeps_alpha_and_size():
    rgba = np.dstack([random_rgb(20, 30), np.full((20, 30), 77, np.uint8)])
    out = translator().translate(Image.fromarray(rgba, "RGBA"), "denoise=1,style1=0.5")
    assert out.mode == "RGBA" and out.size == (30, 20)
    assert np.all(np.asarray(out)[..., 3] == 77)


# --- the rewritten network computes what MixNet computes -------------------------------------


LITE0 = "efficientnet-lite0"


@pytest.mark.parametrize("context", [(0, "", 1, "gated"), (2, "", 1, "gated"), (2, LITE0, 1, "gated"),
                                     (2, LITE0, 3, "gated"), (0, "", 1, "gated-fill")])  # fmt: skip
@pytest.mark.parametrize("size", [(32, 48), (17, 33)])
def test_fp32_inference_net_matches_mixnet(size, context):
    convs, backbone, scales, head = context
    config = replace(TINY_CONFIG, context=convs, context_backbone=backbone, context_scales=scales, head=head)
    model = make_tiny_model(config=config)
    net = InferenceNet(model, CPU, torch.float32)
    x, c = torch.rand(1, 3, *size), torch.tensor([VECTOR])
    with torch.inference_mode(), devices.threads_for(0, CPU):
        want = model.forward_any_size(x, c)
        got = net.forward_any_size(net.prepare(x), net.film(c))
    assert (got - want).abs().max() < 1e-4


@pytest.mark.parametrize("head", ["gated", "gated-fill"])
def test_a_known_map_replaces_the_gate(head):
    """Where a caller knows which pixels are missing (a user's inpainting mask), the head takes that map as its
    gate: the engine computes MixNet's raw output finished with it, and the known pixels pass through exactly."""
    from mixtask.nets.film import apply_gated_head, input_stats

    model = make_tiny_model(config=replace(TINY_CONFIG, head=head))
    net = InferenceNet(model, CPU, torch.float32)
    rgb = random_rgb(32, 48)
    known = np.ones((32, 48), dtype=bool)
    known[8:20, 12:30] = False
    x, c, known_t = from_uint8(rgb)[None], torch.tensor([VECTOR]), torch.from_numpy(known)[None, None].float()
    raws = []
    model.output.register_forward_hook(lambda module, args, out: raws.append(out))
    with torch.inference_mode(), devices.threads_for(0, CPU):
        model.forward_any_size(x, c)
        want = apply_gated_head(raws[-1], x, *input_stats(x), fill=head == "gated-fill", known=known_t)
        got = net.forward_any_size(net.prepare(x), net.film(c), known_t)
        told_nothing = net.forward_any_size(net.prepare(x), net.film(c))
    assert (got - want).abs().max() < 1e-4 and (told_nothing - want).abs().max() > 1e-2
    info = WeightsInfo("tiny.safetensors", model.config, DEFAULT_TASK_SET, provenance={"size": 64})
    engine = Translator(model, info, device="cpu", precision="fp32")
    assert engine.enlargement(32, 48) > 1  # a small image, which runs as it is when told what is known
    out = engine.translate_array(rgb, VECTOR, known=known)
    assert (out[known] == rgb[known]).all() and (out[~known] != rgb[~known]).any()
    with pytest.raises(MixtaskError, match="known map"):
        engine.translate_array(rgb, VECTOR, known=known[:-1])


def test_the_engine_owns_its_context_branch_and_shares_only_the_frozen_backbone():
    model = make_tiny_model(config=replace(TINY_CONFIG, context=2, context_backbone="efficientnet-lite0"))
    net = InferenceNet(model, CPU, torch.float32)
    assert net.context.backbone is model.context.backbone  # never trained: shared, not copied
    x, c = torch.rand(1, 3, 32, 48), torch.tensor([VECTOR])
    with torch.inference_mode(), devices.threads_for(0, CPU):
        before = net.forward_any_size(net.prepare(x), net.film(c))
        model.context.out.weight.add_(1.0)  # training moves the branch's own weights
        assert torch.equal(net.forward_any_size(net.prepare(x), net.film(c)), before)
    model.context.backbone.requires_grad_(True)  # `--tune-backbone` trains the backbone too: then it is copied
    assert InferenceNet(model, CPU, torch.float32).context.backbone is not model.context.backbone


def test_bf16_is_close_to_fp32_on_the_tiny_model():
    x = (probe_image() * 255).round().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    fp32, bf16 = translator("fp32"), translator("bf16")
    for task in ("recon", "denoise=1,style1=0.6", "seg=1"):
        want, got = fp32.translate_array(x, task), bf16.translate_array(x, task)
        assert psnr(torch.from_numpy(got) / 255, torch.from_numpy(want) / 255) > 40


def test_untrained_film_is_identity_so_every_task_reconstructs_alike():
    torch.manual_seed(0)
    model = build_model(TINY_CONFIG).eval()  # FiLM generator initialised to gamma = 1, beta = 0
    engine = Translator(model, tiny_info(), device="cpu", precision="fp32")
    rgb = random_rgb(24, 40)
    recon = engine.translate_array(rgb, "recon")
    assert np.array_equal(recon, engine.translate_array(rgb, "denoise=1,style1=1,seg=0.5"))
    with torch.inference_mode():
        want = model.forward_any_size(torch.from_numpy(rgb).permute(2, 0, 1)[None] / 255, torch.zeros(1, 5))
    want = (want.clamp(0, 1) * 255 + 0.5).floor().to(torch.uint8)[0].permute(1, 2, 0).numpy()
    assert np.abs(recon.astype(int) - want.astype(int)).max() <= 1


def trained_at(size: int | None) -> Translator:
    info = tiny_info(None if size is None else {"size": size})
    return Translator(make_tiny_model(), info, device="cpu", precision="fp32")


def network_input_sizes(engine: Translator) -> list[tuple[int, int]]:
    """Record the (H, W) of every image the engine's network is given, from now on."""
    sizes, forward = [], engine.net.forward_any_size

    def recording(x, film, known=None):
        sizes.append(tuple(x.shape[-2:]))
        return forward(x, film, known)

    engine.net.forward_any_size = recording
    return sizes


SMALL_IMAGE_CASES = [  # weights trained at, image, what the network sees
    (64, (24, 40), (64, 107)),  # enlarged to the training side
    (None, (24, 40), (24, 40)),  # weights that do not say: as it is
    (64, (80, 72), (80, 72)),  # not small
    (16, (4, 200), (4, 200)),  # a strip: enlarging it would pass the long-side cap (4 x 16)
]


@pytest.mark.parametrize(("trained", "image", "seen"), SMALL_IMAGE_CASES)
def test_an_image_smaller_than_the_training_crops_runs_enlarged_to_them(trained, image, seen):
    engine = trained_at(trained)
    sizes = network_input_sizes(engine)
    out = engine.translate_array(random_rgb(*image), VECTOR)
    assert out.shape == (*image, 3) and sizes == [seen]
    engine.gate_array(random_rgb(*image), VECTOR)
    assert sizes[-1] == seen  # the cut-out's mask is read at the same scale


def test_the_cut_out_mask_of_a_small_image_is_enlarged_no_further_than_its_max_side():
    engine = trained_at(64)
    sizes = network_input_sizes(engine)
    engine.gate_array(random_rgb(24, 40), VECTOR, max_side=48)  # the working side asks 64 x 107, max_side 48
    assert sizes == [(29, 48)]


def test_an_enlarged_run_brings_back_the_networks_change_and_keeps_the_images_own_detail():
    engine, rgb = trained_at(64), random_rgb(24, 40)  # noise: an up-and-down resampling alone would lose most of it
    engine.net.forward_any_size = lambda x, film: x  # a network that changes nothing
    assert np.abs(engine.translate_array(rgb, VECTOR).astype(int) - rgb).max() <= 1
    engine.net.forward_any_size = lambda x, film: x + 0.2  # one that brightens
    want = np.clip(rgb.astype(int) + 51, 0, 255)
    assert np.abs(engine.translate_array(rgb, VECTOR).astype(int) - want).max() <= 1


def test_from_file_loads_weights(tiny_weights):
    engine = Translator.from_file(tiny_weights, device="cpu", precision="fp32")
    assert engine.task_set.names == DEFAULT_TASK_SET.names
    assert engine.parse_task("denoise=1") == (0.0, 1.0, 0.0, 0.0, 0.0)
    assert engine.device == CPU and engine.precision == "fp32"


def test_bench_command_writes_table_json_and_markdown(tiny_weights, tmp_path):
    import json

    from typer.testing import CliRunner

    from mixtask.cli import app

    args = ["bench", "-w", str(tiny_weights), "--sizes", "32,40x24", "--precision", "fp32,bf16", "--device", "cpu"]
    files = ["--repeats", "1", "--json", str(tmp_path / "b.json"), "--markdown", str(tmp_path / "b.md")]
    result = CliRunner().invoke(app, args + files)
    assert result.exit_code == 0, result.stderr
    assert "s/MP" in result.stdout
    rows = json.loads((tmp_path / "b.json").read_text())["rows"]
    assert [(r["width"], r["height"], r["precision"]) for r in rows] == [
        (32, 32, "fp32"), (40, 24, "fp32"), (32, 32, "bf16"), (40, 24, "bf16"),
    ]  # fmt: skip
    assert rows[2]["psnr_vs_fp32"] > 30 and rows[0]["e2e_s_per_mp"] > 0
    assert (tmp_path / "b.md").read_text().startswith("| size |")
    bad = CliRunner().invoke(app, ["bench", "-w", str(tiny_weights), "--sizes", "0x5"])
    assert bad.exit_code == 1 and "bad size" in bad.stderr


@pytest.mark.parametrize("size", [(16, 16), (17, 30), (5, 40), (3, 2)])
def test_uint8_padding_matches_the_model_padding(size):
    pixels = torch.randint(0, 256, (1, 3, *size), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))
    padded = pad_to_multiple(pixels)
    assert padded.dtype == torch.uint8  # padded at 1 byte per value
    torch.testing.assert_close(padded.float(), pad_any_size(pixels.float()), rtol=0, atol=0)
