"""The shipped default weights: they load, describe themselves, and run the README's main job.

Skipped while weights/ holds no default model. Quality guards (denoise margin, seg IoU, style
Gram distance) join these once the trained weights reach the model card's bars (issue 4).
"""

from pathlib import Path

import pytest
from PIL import Image
from typer.testing import CliRunner

from mixtask.cli import app
from mixtask.weights import DEFAULT_WEIGHTS_NAME, load_weights

ROOT = Path(__file__).resolve().parent.parent
SHIPPED = ROOT / "weights" / DEFAULT_WEIGHTS_NAME
pytestmark = [
    pytest.mark.shipped,
    pytest.mark.skipif(not SHIPPED.is_file(), reason="no shipped weights in weights/"),
]


def test_shipped_weights_describe_themselves():
    model, info = load_weights(SHIPPED)
    assert info.task_set.names == ("inpaint", "denoise", "seg", "style1", "style2")
    full_width = {"rgb": 1_695_235, "gated": 1_700_421}[info.config.head]  # see test_model.py
    assert sum(p.numel() for p in model.parameters()) == full_width
    for key in ("data", "command", "steps", "size", "hardware", "wall_seconds", "date"):
        assert key in info.provenance, key
    assert info.metrics.get("held_out") is True, "the shipped weights carry their held-out eval"


def test_readme_main_job_keeps_size_and_mode(tmp_path, monkeypatch):
    monkeypatch.delenv("MIXTASK_WEIGHTS", raising=False)
    source = ROOT / "examples" / "skimage-astronaut.jpg"
    small = tmp_path / "astronaut.jpg"
    with Image.open(source) as image:
        image.resize((96, 96)).save(small, quality=95)
    result = CliRunner().invoke(app, ["apply", str(small), "--task", "seg=1,style1=1", "-o", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "out" / "astronaut.jpg") as output:
        assert output.size == (96, 96) and output.mode == "RGB"
