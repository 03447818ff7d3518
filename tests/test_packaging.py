"""The wheel: built from the repo, installed (not editable) into a fresh virtual environment, it finds its shipped
weights and its page, and an inference-only install does not ask for the training, evaluation or serving extras."""

from __future__ import annotations

import email
import os
import site
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
OPTIONAL = ("opencv-python-headless", "pytorch-msssim", "matplotlib", "onnxruntime", "fastapi", "uvicorn")


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-q", "-w", str(out)]
    command.append(str(ROOT))
    built = subprocess.run(command, capture_output=True, text=True, timeout=300)
    if built.returncode != 0 and "No module named" in built.stderr:
        pytest.skip(f"cannot build here: {built.stderr.strip().splitlines()[-1]}")
    assert built.returncode == 0, built.stderr
    (path,) = out.glob("mixtask-*.whl")
    return path


def test_inference_needs_none_of_the_extras(wheel):
    with zipfile.ZipFile(wheel) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        metadata = email.message_from_bytes(archive.read(name))
        names = archive.namelist()
    required = [r for r in metadata.get_all("Requires-Dist") if "extra ==" not in r]
    assert not [r for r in required if r.split(">")[0].split("=")[0].strip() in OPTIONAL], required
    assert "mixtask/serve/page.html" in names
    assert any(n.endswith("share/mixtask/weights/mixtask-base.safetensors") for n in names)


def test_the_installed_wheel_applies_the_shipped_weights(wheel, tmp_path):
    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    python = venv / "bin" / "python"
    # torch and the other dependencies come from this environment (a plain path: its .pth files, and so an
    # editable mixtask, are not read); mixtask itself only from the wheel
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                             capture_output=True, text=True, check=True).stdout.strip()  # fmt: skip
    Path(purelib, "deps.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    install = [sys.executable, "-m", "pip", "--python", str(python), "install", "--no-deps", "-q", str(wheel)]
    installed = subprocess.run(install, capture_output=True, text=True, timeout=300)
    assert installed.returncode == 0, installed.stderr
    photo = tmp_path / "photo.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(photo)
    env = {k: v for k, v in os.environ.items() if k not in ("MIXTASK_WEIGHTS", "PYTHONPATH")}
    where = subprocess.run([str(python), "-c", "import mixtask; print(mixtask.__file__)"], capture_output=True,
                           text=True, env=env, cwd=tmp_path, check=True).stdout  # fmt: skip
    assert str(venv) in where  # the wheel's copy, not the repository's
    out = tmp_path / "out.png"
    command = [str(venv / "bin" / "mixtask"), "apply", str(photo), "-t", "seg=1,style1=1", "-o", str(out)]
    run = subprocess.run(command, capture_output=True, text=True, env=env, cwd=tmp_path, timeout=300)
    assert run.returncode == 0, run.stderr
    assert Image.open(out).size == (56, 40)
