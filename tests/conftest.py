"""Shared fixtures: tiny models (width 4) saved on the fly, tiny images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from mixtask.nets.film import ModelConfig
from mixtask.nets.registry import build_model
from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.weights import save_weights

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
