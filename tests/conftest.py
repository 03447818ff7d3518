"""Shared fixtures: tiny models (width 4) saved on the fly, tiny images, and the training tests' tiny data and
options (a generated 4-photo dataset, a tiny random VGG, 32 px crops)."""

from __future__ import annotations

import os
import signal
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import save_file

from mixtask.nets.film import ModelConfig
from mixtask.nets.registry import build_model
from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.training import StyleSpec, TrainOptions
from mixtask.weights import save_weights
from tests.fakes import tiny_vgg_state

# Unit tests use tiny tensors: one thread is fastest (thread hand-offs dominate at 32 px).
torch.set_num_threads(1)

TINY_CONFIG = ModelConfig(num_tasks=len(DEFAULT_TASK_SET), width=4, res_blocks=1)


def make_tiny_model(seed: int = 0, config: ModelConfig = TINY_CONFIG):
    """A tiny model whose FiLM generator is random, so every task changes the output."""
    torch.manual_seed(seed)
    model = build_model(config)
    with torch.no_grad():
        for layer in model.film.layers:
            layer.weight.normal_(0, 0.3)
        if getattr(model, "context", None) is not None:  # a context branch that does something
            for layer in model.context.film.layers:
                layer.weight.normal_(0, 0.3)
            model.context.out.weight.normal_(0, 0.3)
            if model.context.project is not None:  # a backbone (randomly initialised) that does something too
                model.context.project.weight.normal_(0, 0.3)
            for skip in model.context.skips:  # and its finer stages, if any
                skip.weight.normal_(0, 0.3)
        if config.head == "gated-fill":  # a gate that keeps some pixels and a blend that is on: the fill shows
            model.output.conv.weight[3:].normal_(0, 0.3)
            model.output.conv.bias[4] = 3.0
    return model.eval()


@pytest.fixture(autouse=True, scope="session")
def _private_cache(tmp_path_factory):
    """Style-teacher renderings of test data go to a temporary cache, never the user's ~/.cache."""
    import os

    previous = os.environ.get("MIXTASK_CACHE")
    os.environ["MIXTASK_CACHE"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        os.environ.pop("MIXTASK_CACHE", None)
    else:
        os.environ["MIXTASK_CACHE"] = previous


@pytest.fixture
def tiny_weights(tmp_path: Path) -> Path:
    path = tmp_path / "tiny.safetensors"
    save_weights(path, make_tiny_model(), DEFAULT_TASK_SET, provenance={"data": "random init (test)"})
    return path


@pytest.fixture
def rgb_image() -> Image.Image:
    rng = np.random.default_rng(0)
    return Image.fromarray(rng.integers(0, 256, (24, 40, 3), dtype=np.uint8), "RGB")


# ----------------------------------------------------------------------------- tiny training runs


def make_dataset(root: Path, photos: int = 4, seed: int = 0) -> Path:
    """photos/train (smooth-ish colour images), masks/isnet/train (a disc), cutouts/train (RGBA)."""
    rng = np.random.default_rng(seed)
    for sub in ("photos/train", "masks/isnet/train", "cutouts/train"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    yy, xx = np.mgrid[0:48, 0:64]
    for i in range(photos):
        wave = 40 * np.sin(xx / (3 + i))[..., None] + rng.integers(0, 200, (1, 1, 3))
        Image.fromarray((wave + rng.normal(0, 10, (48, 64, 3))).clip(0, 255).astype(np.uint8)).save(
            root / f"photos/train/p{i}.jpg"
        )
        disc = (((yy - 24) ** 2 + (xx - 32) ** 2) < 200).astype(np.uint8) * 255
        Image.fromarray(disc).save(root / f"masks/isnet/train/p{i}.png")
    for i in range(2):
        rgba = rng.integers(0, 256, (30, 20, 4)).astype(np.uint8)
        rgba[..., 3] = 0
        rgba[3:-3, 3:-3, 3] = 255
        Image.fromarray(rgba, "RGBA").save(root / f"cutouts/train/c{i}.png")
    return root


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("assets")
    rng = np.random.default_rng(1)
    Image.fromarray(rng.integers(0, 256, (40, 50, 3), dtype=np.uint8)).save(root / "style1.png")
    Image.fromarray(rng.integers(0, 256, (36, 36, 3), dtype=np.uint8)).save(root / "style2.png")
    save_file(tiny_vgg_state(), str(root / "vgg.safetensors"))
    return {"data": make_dataset(root / "data"), "root": root, "vgg": root / "vgg.safetensors"}


def tiny_options(assets, out: Path, n_styles: int = 1, **changes) -> TrainOptions:
    specs = tuple(StyleSpec(f"style{i}", str(assets["root"] / f"style{i}.png")) for i in range(1, n_styles + 1))
    options = TrainOptions(
        str(assets["data"]), str(out), specs, steps=4, size=32, batch=2, vgg=str(assets["vgg"]), width=4,
        res_blocks=1, precision="fp32", device="cpu", preview_every=0, checkpoint_every=0, style_loss="perceptual",
    )  # fmt: skip
    return replace(options, **changes)


def interrupt_at(step: int):
    """A training callback that sends this process SIGINT after `step`: the real Ctrl-C path."""

    def callback(done: int) -> None:
        if done == step:
            os.kill(os.getpid(), signal.SIGINT)  # the real signal path: checkpoint, then stop

    return callback


def no_ddp():
    """A single-process context, as when not under torchrun."""
    from mixtask.training.distributed import DistContext

    return DistContext()
