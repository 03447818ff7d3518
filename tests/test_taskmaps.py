"""Spatial task maps (`--task-map`): loading, quantised blending for FiLM, native per-pixel vectors, CLI."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from mixtask.apply.run import ApplyOptions, apply_paths, is_slug
from mixtask.cli import app
from mixtask.errors import MixtaskError
from mixtask.inference import taskmaps
from mixtask.inference.translator import Translator
from mixtask.tasks import DEFAULT_TASK_SET

TASKS = DEFAULT_TASK_SET


def random_rgb(height: int = 32, width: int = 48, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def save(path: Path, array: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array, mode).save(path)
    return path


def rgb_map(height: int, width: int, red=0, green=0, blue=0) -> np.ndarray:
    out = np.zeros((height, width, 3), np.uint8)
    out[..., 0], out[..., 1], out[..., 2] = red, green, blue
    return out


class Counting:
    """A translator wrapper that records every whole-image network run (`translate_tensor` call)."""

    def __init__(self, inner):
        self.inner = inner
        self.vectors: list = []

    def __getattr__(self, name):
        return getattr(self.inner, name)

    def translate_tensor(self, x, vector):
        self.vectors.append(vector)
        return self.inner.translate_tensor(x, vector)


@pytest.fixture
def translator(tiny_weights) -> Counting:
    return Counting(Translator.from_file(tiny_weights, device="cpu", precision="fp32"))


@pytest.fixture
def run(tiny_weights):
    def invoke(*args):
        return CliRunner().invoke(app, ["apply", *map(str, args), "-w", str(tiny_weights)])

    return invoke


def uniform(translator, rgb: np.ndarray, text: str) -> np.ndarray:
    return translator.inner.translate_array(rgb, TASKS.parse(text))


def as_int(array: np.ndarray) -> np.ndarray:
    return array.astype(np.int16)


# ----------------------------------------------------------------------------- blend path (FiLM)


def test_flat_map_equals_the_uniform_vector(run, tmp_path):
    image = save(tmp_path / "a.png", random_rgb())
    save(tmp_path / "flat.png", rgb_map(5, 7, red=153, green=255))  # other size: resized, still flat
    mapped = run(image, "--task-map", tmp_path / "flat.png", "--map-tasks", "style1,seg", "-o", tmp_path / "m.png")
    assert mapped.exit_code == 0, mapped.stderr
    assert run(image, "--task", "style1=0.6,seg", "-o", tmp_path / "t.png", "--cutout", "black").exit_code == 0
    mapped, uniform_out = (np.asarray(Image.open(tmp_path / name)) for name in ("m.png", "t.png"))
    np.testing.assert_array_equal(mapped, uniform_out)
    assert np.abs(as_int(uniform_out) - as_int(random_rgb())).mean() > 5  # the task did change the image


def test_grayscale_map_with_a_base_task(run, tmp_path):
    image = save(tmp_path / "a.png", random_rgb())
    save(tmp_path / "gray.png", np.full((32, 48), 51, np.uint8), "L")
    mapped = run(
        image, "-t", "seg", "--task-map", tmp_path / "gray.png", "--map-tasks", "denoise", "-o", tmp_path / "m.png"
    )
    assert mapped.exit_code == 0, mapped.stderr
    assert run(image, "-t", "seg,denoise=0.2", "-o", tmp_path / "t.png", "--cutout", "black").exit_code == 0
    np.testing.assert_array_equal(
        np.asarray(Image.open(tmp_path / "m.png")), np.asarray(Image.open(tmp_path / "t.png"))
    )


def test_split_map_takes_each_half_from_its_task(translator, tmp_path):
    rgb = random_rgb()
    split = rgb_map(32, 48)
    split[:, :24, 0], split[:, 24:, 1] = 255, 255  # left: style1, right: seg
    task_map = taskmaps.load_task_map(save(tmp_path / "split.png", split), "style1,seg", TASKS)
    out = as_int(task_map.run(translator, rgb))
    left, right = as_int(uniform(translator, rgb, "style1")), as_int(uniform(translator, rgb, "seg"))
    assert np.abs(left - right).mean() > 5
    np.testing.assert_array_equal(out[:, :24], left[:, :24])  # same size: every pixel is one region's
    np.testing.assert_array_equal(out[:, 24:], right[:, 24:])
    assert len(translator.vectors) == 2


def test_small_split_map_is_resized_with_a_soft_boundary(translator, tmp_path):
    rgb = random_rgb()
    small = rgb_map(2, 4)
    small[:, :2, 0], small[:, 2:, 1] = 255, 255
    task_map = taskmaps.load_task_map(save(tmp_path / "small.png", small), "style1,seg", TASKS)
    out = as_int(task_map.run(translator, rgb))
    left, right = as_int(uniform(translator, rgb, "style1")), as_int(uniform(translator, rgb, "seg"))
    # bilinear 4 -> 48 px: pixel columns 0-17 are pure left, 30-47 pure right, a ramp between
    assert np.abs(out[:, :17] - left[:, :17]).max() <= 1 and np.abs(out[:, 31:] - right[:, 31:]).max() <= 1
    edge = out[:, 20:28]
    assert np.abs(edge - left[:, 20:28]).mean() > 2 and np.abs(edge - right[:, 20:28]).mean() > 2


def ramp_map(height: int = 16, width: int = 128) -> np.ndarray:
    """style1 (R) 1 on the left 48 columns, 0 from column 80, a 32-column linear ramp between; G = 1 - R."""
    red = np.zeros((height, width))
    red[:, :48] = 255
    red[:, 48:80] = np.linspace(255, 0, 34)[1:-1]
    red = np.rint(red).astype(np.uint8)
    return rgb_map(height, width, red=red, green=255 - red)


def test_soft_edge_interpolates_between_the_bracketing_runs(translator, tmp_path):
    rgb = random_rgb(16, 128)
    codes = ramp_map()
    task_map = taskmaps.load_task_map(save(tmp_path / "ramp.png", codes), "style1,seg", TASKS)
    out = as_int(task_map.run(translator, rgb))
    # each ramp column is under 1% of the pixels: levels 0, 1/4, ..., 1 (steps of 1/4), on the edge's diagonal
    ran = sorted(tuple(np.round(vector, 6)) for vector in translator.vectors)
    assert ran == sorted((0, 0, 1 - s, s, 0) for s in (0.0, 0.25, 0.5, 0.75, 1.0))
    x = torch.from_numpy(rgb).permute(2, 0, 1)[None].float() / 255
    for column in range(48, 80):
        value = codes[0, column, 0] / 255
        low = min(np.floor(value * 4) / 4, 0.75)
        share = (value - low) / 0.25
        below, above = (
            translator.inner.translate_tensor(x, (0, 0, 1 - s, s, 0))[0, :, :, column] for s in (low, low + 0.25)
        )
        want = ((1 - share) * below + share * above).permute(1, 0).numpy() * 255
        got = out[:, column]
        assert np.abs(got - want).max() <= 1, column
        lowest = torch.minimum(below, above).permute(1, 0).numpy() * 255
        highest = torch.maximum(below, above).permute(1, 0).numpy() * 255
        assert (got >= np.floor(lowest) - 1).all() and (got <= np.ceil(highest) + 1).all()
    np.testing.assert_array_equal(out[:, :48], as_int(uniform(translator, rgb, "style1"))[:, :48])
    np.testing.assert_array_equal(out[:, 80:], as_int(uniform(translator, rgb, "seg"))[:, 80:])


def test_soft_edge_with_few_runs_blends_the_two_regions():
    blend = taskmaps.plan_blend(ramp_map()[..., :2], max_runs=4)
    assert (blend.share, blend.step) == (0.01, 0.5) and len(blend.strengths) == 3  # 0, 1/2 and 1 on the diagonal
    blend = taskmaps.plan_blend(ramp_map()[..., :1], max_runs=2)
    assert sorted(blend.strengths[:, 0]) == [0.0, 1.0]
    column = 60
    value = ramp_map()[0, column, 0] / 255
    weights = {float(s): blend.weight_map(run)[0, column] for run, s in enumerate(blend.strengths[:, 0])}
    assert weights[1.0] == pytest.approx(value) and weights[0.0] == pytest.approx(1 - value)


def test_rounding_off_the_edge_adds_no_runs():
    codes = ramp_map()[..., :2].copy()
    codes[:, 50:78:3, 1] += 1  # R + G = 256 on some ramp columns: 1/255 off the edge's diagonal
    blend = taskmaps.plan_blend(codes)
    assert len(blend.strengths) == 5  # the corners off the diagonal never get 4%: dropped
    strengths = sum(blend.weight_map(run)[..., None] * blend.strengths[run] for run in range(len(blend.strengths)))
    assert np.abs(strengths - codes / 255).max() <= 1 / 255


def test_hard_regions_run_once_per_distinct_value(translator, tmp_path):
    rgb = random_rgb()
    bands = np.zeros((32, 48), np.uint8)
    bands[:, 16:32], bands[:, 32:] = 153, 255
    task_map = taskmaps.load_task_map(save(tmp_path / "bands.png", bands, "L"), "style2", TASKS)
    out = as_int(task_map.run(translator, rgb))
    assert sorted(vector[4] for vector in translator.vectors) == [0.0, 0.6, 1.0]
    for text, columns in (("recon", slice(0, 16)), ("style2=0.6", slice(16, 32)), ("style2", slice(32, 48))):
        np.testing.assert_array_equal(out[:, columns], as_int(uniform(translator, rgb, text))[:, columns])


def test_too_many_flat_values_are_quantised_more_coarsely(translator, tmp_path):
    rgb = random_rgb(24, 48)
    values = np.rint(np.linspace(0, 255, 24)).astype(np.uint8)
    bands = np.repeat(np.repeat(values[None], 2, axis=1), 24, axis=0)  # 24 bands of 2 columns: 4.2% each
    blend = taskmaps.plan_blend(bands[..., None])
    # 24 flat values would be 24 runs: flat values need 5% now, so none counts; steps of 1/4
    assert (blend.share, blend.step) == (0.05, 0.25)
    assert np.allclose(sorted(blend.strengths[:, 0]), [0, 0.25, 0.5, 0.75, 1])
    task_map = taskmaps.load_task_map(save(tmp_path / "bands.png", bands, "L"), "style1", TASKS)
    task_map.run(translator, rgb)
    assert len(translator.vectors) == 5


@pytest.mark.parametrize("channels", [1, 2, 3])
def test_run_cap_holds_for_noise(channels):
    codes = np.random.default_rng(channels).integers(0, 256, (40, 40, channels), dtype=np.uint8)
    blend = taskmaps.plan_blend(codes)
    assert len(blend.strengths) <= taskmaps.MAX_RUNS
    np.testing.assert_allclose(blend.weights.sum(axis=0), 1, rtol=1e-6)
    # the weights reproduce every pixel's vector (linear interpolation; noise reaches every corner, none is dropped)
    strengths = sum(blend.weight_map(run)[..., None] * blend.strengths[run] for run in range(len(blend.strengths)))
    assert np.abs(strengths - codes / 255).max() < 1e-6


def test_alpha_scales_the_strengths(translator, tmp_path):
    rgb = random_rgb()
    rgba = np.concatenate([rgb_map(32, 48, red=255), np.full((32, 48, 1), 255, np.uint8)], axis=2)
    rgba[:, 24:, 3] = 0  # transparent right half: style1 off there
    task_map = taskmaps.load_task_map(save(tmp_path / "alpha.png", rgba, "RGBA"), "style1", TASKS)
    out = as_int(task_map.run(translator, rgb))
    np.testing.assert_array_equal(out[:, :24], as_int(uniform(translator, rgb, "style1"))[:, :24])
    np.testing.assert_array_equal(out[:, 24:], as_int(uniform(translator, rgb, "recon"))[:, 24:])


# ----------------------------------------------------------------------------- native path


class FakeMapTranslator:
    """Stands for a translator whose architecture takes per-pixel vectors (`task_maps = True`)."""

    capabilities = SimpleNamespace(arch="fake", task_maps=True)  # as mixtask.nets.capabilities.Capabilities
    task_set = TASKS

    def __init__(self):
        self.vectors = []

    def translate_tensor(self, x, vector):
        self.vectors.append(vector)
        return x * (1 - vector[:, 3:4]) + 0.5 * vector[:, 3:4]  # style1 strength pulls to grey, per pixel


def test_native_path_passes_per_pixel_vectors_once(tmp_path):
    rgb = random_rgb()
    small = rgb_map(2, 4)
    small[:, :2, 0] = 255
    task_map = taskmaps.load_task_map(save(tmp_path / "m.png", small), "style1", TASKS, base="seg=0.5")
    fake = FakeMapTranslator()
    out = task_map.run(fake, rgb)
    (vectors,) = fake.vectors
    assert vectors.shape == (1, len(TASKS), 32, 48)
    np.testing.assert_array_equal(vectors[0, 3].numpy(), task_map.codes_for(48, 32)[..., 0] / np.float32(255))
    assert (vectors[0, 2] == 0.5).all() and (vectors[0, [0, 1, 4]] == 0).all()
    assert (out[:, :16] == 128).all() and np.array_equal(out[:, 34:], rgb[:, 34:])


class MapNet(torch.nn.Module):
    """A tiny real module with per-pixel task maps: a 1x1 conv on the image and the map."""

    mixes, continuous, task_maps = True, True, True

    def __init__(self, config):
        super().__init__()
        self.config = config
        self.mix = torch.nn.Conv2d(3 + config.num_tasks, 3, 1)

    def forward_any_size(self, x, c):
        c = c[:, :, None, None].expand(-1, -1, *x.shape[-2:]) if c.ndim == 2 else c
        return torch.sigmoid(self.mix(torch.cat([x, c], dim=1)))

    forward = forward_any_size


def test_native_path_through_a_real_translator(tmp_path):
    from mixtask.nets.film import ModelConfig
    from mixtask.weights import WeightsInfo

    config = ModelConfig(num_tasks=len(TASKS), width=4, res_blocks=1, arch="mapnet")
    torch.manual_seed(0)
    try:
        translator = Translator(MapNet(config).eval(), WeightsInfo("m", config, TASKS), device="cpu", precision="fp32")
    except MixtaskError as error:  # an engine without other architectures yet
        pytest.skip(f"this Translator runs no other architecture yet ({error})")
    rgb = random_rgb()
    split = rgb_map(32, 48)
    split[:, :24, 0] = 255
    task_map = taskmaps.load_task_map(save(tmp_path / "m.png", split), "seg", TASKS)
    counting = Counting(translator)
    out = as_int(task_map.run(counting, rgb))
    assert len(counting.vectors) == 1 and counting.vectors[0].shape == (1, len(TASKS), 32, 48)
    np.testing.assert_array_equal(out[:, :24], as_int(translator.translate_array(rgb, TASKS.parse("seg")))[:, :24])
    np.testing.assert_array_equal(out[:, 24:], as_int(translator.translate_array(rgb, TASKS.parse("recon")))[:, 24:])


def test_native_path_with_the_topdown_architecture(tmp_path):
    from mixtask.nets import registry as archs
    from mixtask.nets.film import ModelConfig
    from mixtask.nets.registry import build_model
    from mixtask.weights import WeightsInfo

    if "topdown" not in archs.names():
        pytest.skip("no topdown architecture in this checkout")
    config = ModelConfig(num_tasks=len(TASKS), width=4, res_blocks=1, arch="topdown")
    torch.manual_seed(0)
    model = build_model(config)
    with torch.no_grad():  # its task paths start at zero: make the tasks differ
        for parameter in model.parameters():
            parameter.add_(torch.randn_like(parameter) * 0.3)
    translator = Counting(Translator(model.eval(), WeightsInfo("t", config, TASKS), device="cpu", precision="fp32"))
    rgb = random_rgb()
    flat = taskmaps.load_task_map(save(tmp_path / "flat.png", rgb_map(4, 4, red=153, green=255)), "style1,seg", TASKS)
    np.testing.assert_array_equal(
        flat.run(translator, rgb), translator.translate_array(rgb, TASKS.parse("style1=0.6,seg"))
    )
    split = rgb_map(32, 48)
    split[:, :24, 0], split[:, 24:, 1] = 255, 255
    task_map = taskmaps.load_task_map(save(tmp_path / "split.png", split), "style1,seg", TASKS)
    out = as_int(task_map.run(translator, rgb))
    assert len(translator.vectors) == 2 and translator.vectors[1].shape == (1, len(TASKS), 32, 48)
    a, b = as_int(uniform(translator, rgb, "style1")), as_int(uniform(translator, rgb, "seg"))
    assert np.abs(out[:, :20] - a[:, :20]).mean() < np.abs(out[:, :20] - b[:, :20]).mean()
    assert np.abs(out[:, 28:] - b[:, 28:]).mean() < np.abs(out[:, 28:] - a[:, 28:]).mean()


# ----------------------------------------------------------------------------- CLI and folders


def test_folder_run_with_one_map(run, tmp_path):
    folder = tmp_path / "photos"
    save(folder / "a.png", random_rgb(32, 48))
    save(folder / "b.png", random_rgb(24, 40, seed=1))
    map_file = save(folder / "regions.png", rgb_map(8, 8, red=np.tile([0, 255], 4)[None]))
    before = map_file.read_bytes()
    result = run(folder, "--task-map", map_file, "--map-tasks", "style1")
    assert result.exit_code == 0, result.stderr
    names = sorted(p.name for p in folder.iterdir())
    assert names == ["a.map-regions.png", "a.png", "b.map-regions.png", "b.png", "regions.png"]  # the map is no input
    assert Image.open(folder / "b.map-regions.png").size == (40, 24) and map_file.read_bytes() == before
    again = run(folder, "--task-map", map_file, "--map-tasks", "style1", "--skip-existing")
    assert again.exit_code == 0 and "0 processed, 2 skipped, 0 failed" in again.stderr  # outputs are not inputs
    out = run(folder, "--task-map", map_file, "--map-tasks", "style1", "-t", "seg", "-o", tmp_path / "out")
    assert out.exit_code == 0 and sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]


def test_folder_run_resizes_the_map_per_image(translator, tmp_path):
    folder = tmp_path / "photos"
    rgbs = {"a": random_rgb(32, 48), "b": random_rgb(20, 36, seed=1)}
    for name, rgb in rgbs.items():
        save(folder / f"{name}.png", rgb)
    map_file = save(tmp_path / "m.png", rgb_map(4, 4, red=np.array([[0, 0, 255, 255]]), green=200))
    options = ApplyOptions(task_map=map_file, map_tasks="style1,denoise", output=tmp_path / "out")
    assert apply_paths([folder], options, translator=translator).exit_code == 0
    task_map = taskmaps.load_task_map(map_file, "style1,denoise", TASKS)
    for name, rgb in rgbs.items():
        want = task_map.run(translator.inner, rgb)
        np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / f"{name}.png")), want)


def test_never_overwrites_the_map(run, tmp_path):
    image = save(tmp_path / "a.png", random_rgb())
    map_file = save(tmp_path / "m.png", rgb_map(4, 4, red=255))
    before = map_file.read_bytes()
    result = run(image, "--task-map", map_file, "--map-tasks", "seg", "-o", map_file, "--overwrite")
    assert result.exit_code == 1 and "would overwrite an input" in result.stderr and map_file.read_bytes() == before


@pytest.mark.parametrize(
    ("args", "message", "code"),  # 2: the command was asked wrongly; 1: a file could not be used
    [
        (["--task-map", "missing.png", "--map-tasks", "seg"], "task map missing.png: no such file", 1),
        (["--task-map", "bad.png", "--map-tasks", "seg"], "task map bad.png: not a readable image", 1),
        (["--task-map", "m.png", "--map-tasks", "seg,style1,style2,denoise"], "names 4 tasks, but a map has 3", 2),
        (["--task-map", "m.png", "--map-tasks", "seg,sharpen"], "--map-tasks: unknown task 'sharpen'", 2),
        (["--task-map", "m.png", "--map-tasks", "seg,segment"], "names a task twice", 2),
        (["--task-map", "m.png", "--map-tasks", "recon"], "'recon' means all strengths 0", 2),
        (["--task-map", "gray.png", "--map-tasks", "seg,style1"], "gray.png is grayscale, so it drives one task", 1),
        (["--map-tasks", "seg"], "--map-tasks names the channels of a task map", 2),
        (["--task-map", "m.png"], "--task-map needs --map-tasks", 2),
        ([], "give --task", 2),
        (["-t", "seg", "--task-map", "m.png", "--map-tasks", "cutout"], "seg is in both --task and --map-tasks", 2),
    ],
)
def test_cli_errors_are_one_line(run, tmp_path, monkeypatch, args, message, code):
    monkeypatch.chdir(tmp_path)
    save(tmp_path / "a.png", random_rgb())
    save(tmp_path / "m.png", rgb_map(4, 4, red=255))
    save(tmp_path / "gray.png", np.zeros((4, 4), np.uint8), "L")
    (tmp_path / "bad.png").write_bytes(b"not a png")
    before = sorted(p.name for p in tmp_path.iterdir())
    result = run("a.png", *args)
    lines = result.stderr.strip().splitlines()
    assert result.exit_code == code and len(lines) == 1 and message in lines[0], result.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == before


def test_slugs():
    assert taskmaps.map_slug(Path("my map+v2.png"), TASKS, (0.0,) * 5) == "map-my_map_v2"
    assert taskmaps.map_slug(Path("m.png"), TASKS, TASKS.parse("seg")) == "seg+map-m"
    assert is_slug("map-regions", TASKS) and is_slug("seg+map-m", TASKS) and not is_slug("map-", TASKS)
