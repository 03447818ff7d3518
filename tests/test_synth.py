"""`mixtask synth` and `train --synth` (paper, Sec. 3.3, Method 3 with mixes synthesised ahead)."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from typer.testing import CliRunner

from mixtask.cli import app
from mixtask.errors import MixtaskError
from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.training.synth import MANIFEST_NAME, SynthFolder, SynthOptions, read_manifest, synthesize
from mixtask.weights import read_info
from tests.conftest import make_dataset, tiny_options


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("synth-data"))


def options(weights_path: Path, data_dir: Path, out: Path, **changes) -> SynthOptions:
    mixes = ("denoise+style1", "seg+style1")
    base = SynthOptions(str(weights_path), str(data_dir), str(out), mixes, 5, 32, 0, 2, "fp32")
    return replace(base, **changes)


def test_pairs_and_manifest(tiny_weights, data, tmp_path):
    out = tmp_path / "synth"
    result = synthesize(options(tiny_weights, data, out))
    assert result.count == 5 and result.per_mix == {"denoise+style1": 3, "seg+style1": 2}
    records = [json.loads(line) for line in (out / MANIFEST_NAME).read_text().splitlines()]
    assert [r["index"] for r in records] == [0, 1, 2, 3, 4]
    for record in records:
        assert record["task_names"] == list(DEFAULT_TASK_SET.names)
        assert record["vector"] == list(DEFAULT_TASK_SET.parse(record["mix"]))
        assert record["tasks"] == record["mix"].split("+")
        for key in ("input", "target"):
            with Image.open(out / record[key]) as image:
                assert (image.size, image.mode) == ((32, 32), "RGB")
    assert json.loads((out / "synth.json").read_text())["count"] == 5


def pixels(path: Path) -> torch.Tensor:
    with Image.open(path) as image:
        return torch.from_numpy(np.asarray(image).copy())


def test_seg_targets_are_black_outside_objects_and_inputs_clean(tiny_weights, data, tmp_path):
    out = tmp_path / "synth"
    synthesize(options(tiny_weights, data, out, mixes=("seg+style1", "inpaint+denoise"), count=4))
    records = read_manifest(out)
    seg = [r for r in records if r["mix"] == "seg+style1"]
    target = pixels(out / seg[0]["target"])
    assert (target.sum(dim=-1) == 0).float().mean() > 0.2  # the background is black
    restore = next(r for r in records if r["mix"] == "inpaint+denoise")
    a, b = (pixels(out / restore[k]) for k in ("input", "target"))
    assert not torch.equal(a, b)  # the input carries holes and scratches, the target does not


def test_same_seed_same_samples(tiny_weights, data, tmp_path):
    synthesize(options(tiny_weights, data, tmp_path / "a", count=2))
    synthesize(options(tiny_weights, data, tmp_path / "b", count=2))
    for name in ("000000-denoise+style1-input.png", "000001-seg+style1-target.png"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"mixes": ("style1+style2",)}, "FiLM interpolation"),
        ({"mixes": ("denoise+blur",)}, "unknown task 'blur'"),
        ({"weights": "/nowhere.safetensors"}, "not found"),
        ({"data": "/nowhere"}, "data folder /nowhere not found"),
        ({"count": 0}, "--count"),
    ],
)
def test_bad_synth_options(tiny_weights, data, tmp_path, changes, message):
    with pytest.raises(MixtaskError, match=message):
        synthesize(options(tiny_weights, data, tmp_path / "s", **changes))


def test_existing_folder_is_not_overwritten(tiny_weights, data, tmp_path):
    synthesize(options(tiny_weights, data, tmp_path / "s", count=1))
    with pytest.raises(MixtaskError, match="already holds"):
        synthesize(options(tiny_weights, data, tmp_path / "s", count=1))


def _write_manifest(folder: Path, lines: list[str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MANIFEST_NAME).write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("not json", "line 1 is not a valid record"),
        ('{"input": "a.png"}', "line 1 is not a valid record"),
        (
            '{"input": "a.png", "target": "b.png", "mix": "denoise+seg", "tasks": ["denoise", "seg"], '
            '"task_names": ["denoise", "seg"], "vector": [1, 0]}',
            "does not match mix",
        ),
        (
            '{"input": "a.png", "target": "b.png", "mix": "denoise+seg", "tasks": ["denoise", "seg"], '
            '"task_names": ["denoise", "seg"], "vector": [1, 1]}',
            "missing file",
        ),
    ],
)
def test_bad_manifests(tmp_path, line, message):
    _write_manifest(tmp_path / "s", [line])
    with pytest.raises(MixtaskError, match=message):
        read_manifest(tmp_path / "s")


def test_folder_samples_fit_the_training_size(tiny_weights, data, tmp_path):
    synthesize(options(tiny_weights, data, tmp_path / "s", count=3))
    folder = SynthFolder.open(tmp_path / "s", 48)
    assert folder.labels == ("denoise+style1", "seg+style1")
    inputs, targets = folder.sample("seg+style1", 3, torch.Generator().manual_seed(0))
    assert inputs.shape == targets.shape == (3, 3, 48, 48)
    assert inputs.min() >= 0 and targets.max() <= 1


def test_train_consumes_a_synth_folder(assets, tmp_path):
    from mixtask.training import train

    first = train(tiny_options(assets, tmp_path / "stage1", steps=2, stage1_steps=2, mixes=()), quiet=True)
    synth = tmp_path / "synth"
    synthesize(options(first.weights, assets["data"], synth, mixes=("style1+inpaint",), count=2))
    result = train(
        tiny_options(assets, tmp_path / "run", steps=12, stage1_steps=1, mixes=("denoise+seg",), synth=str(synth)),
        quiet=True,
    )
    jobs = {json.loads(line).get("job") for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()}
    assert "inpaint+style1@synth" in jobs
    assert read_info(result.weights).task_set.mixes == (("denoise", "seg"), ("inpaint", "style1"))


def test_train_rejects_a_synth_folder_with_unknown_tasks(assets, tiny_weights, tmp_path):
    from mixtask.training import train

    synthesize(options(tiny_weights, assets["data"], tmp_path / "s", mixes=("seg+style2",), count=1))
    with pytest.raises(MixtaskError, match=r"--synth .*unknown task 'style2'"):
        train(tiny_options(assets, tmp_path / "run", synth=str(tmp_path / "s")), quiet=True)


def test_cli_synth(tiny_weights, data, tmp_path):
    out = tmp_path / "s"
    args = ["synth", "--weights", str(tiny_weights), "--data", str(data), "--mix", "denoise+style1", "--count", "2",
            "--out", str(out), "--size", "32", "--precision", "fp32"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "2 pairs" in result.output
    bad = CliRunner().invoke(app, [*args[:-6], "--mix", "style1+style2", "--out", str(tmp_path / "t")])
    assert bad.exit_code == 1 and "FiLM interpolation" in bad.output
