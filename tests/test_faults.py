"""Hostile use, on real file systems and real processes (issue 16): each case asserts the exit code, one line
on stderr and no leftovers.

Cases kept beside the code they exercise: crafted and truncated images (test_images.py), crafted weights
(test_weights.py), crafted checkpoints (test_train.py), a symlink loop, SIGTERM, an interrupted write, a
disk-full write simulated, a killed writer's .part file (test_apply.py). Here: read-only and full file systems
(tmpfs, mounted where the tests run as root, skipped elsewhere) and two concurrent `mixtask apply` processes.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.weights import save_weights
from tests.conftest import make_tiny_model

MIXTASK = [sys.executable, "-c", "from mixtask.cli import main; main()"]


@pytest.fixture(scope="module")
def tiny_weights(tmp_path_factory) -> Path:
    return save_weights(tmp_path_factory.mktemp("faults") / "tiny.safetensors", make_tiny_model(), DEFAULT_TASK_SET)


def noise_png(path: Path, side: int, seed: int = 0) -> Path:
    """Random pixels: a PNG that does not compress (its output is about 3 bytes a pixel)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (side, side, 3), dtype=np.uint8)).save(path)
    return path


def apply(weights: Path, *args) -> subprocess.CompletedProcess:
    command = [*MIXTASK, "apply", *map(str, args), "-w", str(weights), "--precision", "fp32"]
    return subprocess.run(command, capture_output=True, text=True, timeout=300)


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


def leftovers(folder: Path) -> list[str]:
    return [p.name for p in folder.rglob("*") if p.name.startswith(".") or p.name.endswith(".part")]


@contextlib.contextmanager
def tmpfs(mount_point: Path, options: str):
    """A tmpfs at `mount_point` (e.g. "size=64k" or "ro"); skips the test where mounting is not allowed."""
    mount_point.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(mount_point)], capture_output=True)
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", "-l", str(mount_point)], capture_output=True)


def test_a_read_only_target_is_one_line_and_exit_1(tiny_weights, tmp_path):
    source = noise_png(tmp_path / "photo.png", 32)
    with tmpfs(tmp_path / "ro", "ro,size=1m") as target:
        result = apply(tiny_weights, source, "-t", "denoise", "-o", target / "out.png")
        assert result.returncode == 1
        lines = error_lines(result.stderr)
        assert len(lines) == 1 and lines[0].startswith("mixtask: error: ") and "out.png" in lines[0]
        assert "Read-only file system" in lines[0] and "Traceback" not in result.stderr
        assert list(target.iterdir()) == []


def test_a_full_disk_stops_the_run_with_one_line_and_leaves_nothing(tiny_weights, tmp_path):
    inputs = tmp_path / "in"
    for i in range(3):
        noise_png(inputs / f"{i}.png", 160, seed=i)  # each output is about 77 kB
    with tmpfs(tmp_path / "small", "size=100k") as target:
        result = apply(tiny_weights, inputs, "-t", "denoise", "-o", target / "out")
        assert result.returncode == 1 and "Traceback" not in result.stderr
        full = [line for line in error_lines(result.stderr) if "disk full" in line]
        assert len(full) == 1 and "nothing was written" in full[0]
        assert leftovers(target) == []
        for written in (target / "out").glob("*.png"):  # what did fit is whole
            assert Image.open(written).size == (160, 160)


def test_two_concurrent_runs_never_replace_each_others_outputs(tiny_weights, tmp_path):
    inputs, out = tmp_path / "in", tmp_path / "out"
    names = [f"{i:02d}.png" for i in range(12)]
    for i, name in enumerate(names):
        noise_png(inputs / name, 48, seed=i)
    runs = []
    for task in ("denoise", "style1"):
        command = [*MIXTASK, "apply", str(inputs), "-t", task, "-o", str(out), "-w", str(tiny_weights)]
        runs.append(subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    results = [(process.wait(timeout=300), process.stderr.read()) for process in runs]
    processed = []
    for code, stderr in results:
        assert code in (0, 1) and "Traceback" not in stderr
        counts = re.search(r"(\d+) processed, (\d+) skipped, (\d+) failed", stderr)
        assert counts is not None, stderr
        done, kept, failed = map(int, counts.groups())
        assert failed == 0 and done + kept == len(names)
        assert code == (1 if kept else 0)  # a kept output is reported, as the README says
        processed.append(done)
    assert sum(processed) == len(names)  # every output was created by exactly one run, never replaced
    assert sorted(p.name for p in out.iterdir()) == names and leftovers(out) == []
    for name in names:
        assert Image.open(out / name).size == (48, 48)


# ----------------------------------------------------------------------------- crafted files, at the command line


def crafted_weights(tmp_path: Path, width) -> Path:
    """The tiny weights with a config field replaced (e.g. width -32): a hostile weights file."""
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    good = save_weights(tmp_path / "good.safetensors", make_tiny_model(), DEFAULT_TASK_SET)
    with safe_open(str(good), "pt") as handle:
        metadata = handle.metadata()
    config_key = next(key for key in metadata if key.endswith("config"))
    config = json.loads(metadata[config_key])
    metadata[config_key] = json.dumps({**config, "width": width})
    path = tmp_path / "crafted.safetensors"
    save_file(load_file(str(good)), str(path), metadata=metadata)
    return path


@pytest.mark.parametrize("command", ["apply", "info", "tasks"])
@pytest.mark.parametrize("width", [-32, 200000, "abc"])
def test_crafted_weights_are_one_line_and_exit_1_everywhere(tmp_path, command, width):
    weights = crafted_weights(tmp_path, width)
    photo = noise_png(tmp_path / "photo.png", 16)
    args = {"apply": [str(photo), "-t", "seg", "-w", str(weights), "-o", str(tmp_path / "out.png")],
            "info": [str(weights)], "tasks": ["-w", str(weights)]}[command]  # fmt: skip
    result = subprocess.run([*MIXTASK, command, *args], capture_output=True, text=True, timeout=120)
    lines = error_lines(result.stderr)
    assert result.returncode == 1 and len(lines) == 1, result.stderr
    assert lines[0].startswith("mixtask: error: ") and "crafted.safetensors" in lines[0] and "width" in lines[0]
    assert not (tmp_path / "out.png").exists() and leftovers(tmp_path) == []


def test_a_truncated_png_is_one_line_fast_and_writes_nothing(tiny_weights, tmp_path):
    from tests.test_images import png_with_rows

    source = tmp_path / "bomb.png"
    source.write_bytes(png_with_rows(4000, 4000, 1))  # declares 16 MP, holds one row
    result = apply(tiny_weights, source, "-t", "denoise", "-o", tmp_path / "out.png")
    lines = error_lines(result.stderr)
    assert result.returncode == 1 and len(lines) == 1 and "bomb.png" in lines[0], result.stderr
    assert not (tmp_path / "out.png").exists() and leftovers(tmp_path) == []
