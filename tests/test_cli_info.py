"""`mixtask --version/--help`, `tasks`, `info` and `sweep` through the CLI."""

import subprocess
import sys
import textwrap
import time

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from mixtask import __version__
from mixtask.cli import app
from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.weights import save_weights
from tests.conftest import make_tiny_model

runner = CliRunner()


def test_version_and_help_do_not_import_torch():
    code = "import sys; from mixtask.cli import app; assert 'torch' not in sys.modules, 'torch imported at start-up'"
    subprocess.run([sys.executable, "-c", code], check=True)
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "mixtask", "--version"], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == f"mixtask {__version__}"
    assert time.perf_counter() - started < 5  # generous: the point is that no model code is loaded


def test_apply_parses_its_options_without_pydantic(tiny_weights, tmp_path):
    # Typer 0.29 coerces every option through a pydantic TypeAdapter: about 0.1 s of each start (README,
    # "Start-up"), so pyproject keeps Typer below it; this notices an upgrade that brings it back
    image = tmp_path / "in.png"
    Image.fromarray(np.zeros((16, 16, 3), np.uint8)).save(image)
    argv = ["apply", str(image), "-t", "denoise", "-w", str(tiny_weights), "-o", str(tmp_path / "out.png")]
    code = textwrap.dedent(f"""
        import sys
        from mixtask.cli import main
        sys.argv = ["mixtask", *{argv!r}]
        try:
            main()
        except SystemExit as stop:
            assert not stop.code, stop.code
        assert "pydantic" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], check=True)
    assert (tmp_path / "out.png").exists()


def test_help_lists_commands():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for command in ("apply", "sweep", "tasks", "info", "train", "synth", "eval", "bench", "serve"):
        assert command in result.output
    assert runner.invoke(app, ["-h"]).output == result.output  # -h as well as --help
    assert "--install-completion" in result.output and "<bool>" not in result.output  # shell completion


def test_every_command_takes_h():
    from mixtask.cli import COMMANDS

    for module in COMMANDS:
        name = module.__name__.rsplit(".", 1)[-1]
        command = {"evaluate": "eval"}.get(name, name)
        result = runner.invoke(app, [command, "-h"])
        assert result.exit_code == 0 and "Usage: mixtask" in result.output, command
        assert "Examples:" in result.output and f"mixtask {command}" in result.output.split("Examples:")[1], command
        for unreadable in ("<bool>", "<list[", "<path>", "{"):  # Typer's own forms; click's are FLAG, PATH, INPUT...
            assert unreadable not in result.output, (command, unreadable)


def test_help_names_values_as_click_tools_do():
    def option_line(command: str, option: str) -> str:
        output = runner.invoke(app, [command, "-h"]).output
        return next(line for line in output.splitlines() if line.lstrip("│ ").startswith(option + " "))

    assert "Usage: mixtask apply [OPTIONS] INPUT..." in runner.invoke(app, ["apply", "-h"]).output
    assert "PATH" in option_line("apply", "--task-map") and "INT" in option_line("apply", "--quality")
    assert "TASK=IMAGE" in option_line("train", "--style")


def test_tasks_table(tiny_weights):
    result = runner.invoke(app, ["tasks", "--weights", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    for text in ("recon", "inpaint", "denoise", "seg", "style1", "style2", "denoise+style1", "seg+style1"):
        assert text in result.output


def test_info_shows_config_parameters_and_provenance(tiny_weights):
    result = runner.invoke(app, ["info", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    assert "width" in result.output and "random init (test)" in result.output
    assert "Provenance" in result.output


def test_info_lists_each_training_session_on_its_own_line(tmp_path):
    sessions = [
        {"event": "start", "step": 0, "hardware": "1 x CPU-A (2 threads)", "command": "mixtask train --data d"},
        {"event": "resume", "step": 4451, "hardware": "1 x CPU-B (1 threads)"},  # an older log: no command
        {"event": "resume", "step": 20474, "hardware": "1 x CPU-B (2 threads)", "size": 256, "lr": 1e-4},
        {"event": "resume", "step": 22000, "hardware": "1 x CPU-B (2 threads)", "size": 128, "job_weights": "seg=3"},
        {"event": "resume", "step": 23000, "hardware": "1 x CPU-B (2 threads)", "size": 128, "job_weights": "seg=3"},
    ]
    path = save_weights(tmp_path / "w.safetensors", make_tiny_model(), DEFAULT_TASK_SET, {"sessions": sessions})
    result = runner.invoke(app, ["info", str(path)], terminal_width=200)
    assert result.exit_code == 0, result.output
    assert "start at step 0: 1 x CPU-A (2 threads): mixtask train --data d" in result.output
    assert "resume at step 4451: 1 x CPU-B (1 threads): command not logged" in result.output
    assert "resume at step 20474 (256 px, lr 0.0001): 1 x CPU-B (2 threads)" in result.output
    assert "resume at step 22000 (128 px, jobs seg=3): mixtask" not in result.output  # same hardware: said once
    assert "resume at step 22000 (128 px, jobs seg=3): command not logged" in result.output
    assert "resume at step 23000 (128 px): command not logged" in result.output  # same jobs: said once


def test_info_shows_recorded_metrics_as_tables_not_json(tiny_weights, tmp_path):
    from mixtask.weights import record_metrics

    metrics = {"split": "val", "held_out": True, "size": 64, "count": 2, "seed": 0, "fd_label": "FD", "notes": [],
               "groups": [{"name": "denoise", "kind": "denoise", "source": "crops", "samples": 2,
                           "rows": {"model": {"mse": 0.01, "psnr": 20.0, "ssim": 0.9, "mse_imagenet": 0.1}},
                           "baselines": [], "best_baseline": None}], "sweep": [], "arch": "film"}  # fmt: skip
    path = tmp_path / "w.safetensors"
    path.write_bytes(tiny_weights.read_bytes())
    record_metrics(path, metrics)
    output = runner.invoke(app, ["info", str(path)]).output
    assert "20.00" in output and '"psnr"' not in output and "{" not in output


def test_info_on_bad_file_is_one_line_error(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a model")
    result = runner.invoke(app, ["info", str(bad)])
    assert result.exit_code == 1
    assert "bad.safetensors is not a valid safetensors" in result.output
    assert "Traceback" not in result.output


def test_missing_default_weights_says_pass_weights(monkeypatch, tmp_path):
    monkeypatch.setenv("MIXTASK_WEIGHTS", str(tmp_path / "absent.safetensors"))
    result = runner.invoke(app, ["tasks"])
    assert result.exit_code == 1 and "not found" in result.output


def test_sweep_sheet_two_axes(tiny_weights, tmp_path):
    image = tmp_path / "in.png"
    Image.fromarray(np.random.default_rng(1).integers(0, 256, (30, 40, 3), dtype=np.uint8)).save(image)
    sheet = tmp_path / "sheet.png"
    args = ["sweep", str(image), "--x", "style1", "--y", "denoise", "--steps", "3", "--cell", "40"]
    result = runner.invoke(app, [*args, "-o", str(sheet), "-w", str(tiny_weights)])
    assert result.exit_code == 0, result.output
    with Image.open(sheet) as grid:
        cells = np.asarray(grid)
    assert grid.size[0] >= 3 * 40 and grid.size[1] >= 3 * 30
    cell_height = 30 + 18 + 4  # image, label strip, margin
    first, last = cells[18:48, 0:40], cells[2 * cell_height + 18 : 3 * cell_height - 4, 88:128]
    assert np.abs(first.astype(int) - last.astype(int)).mean() > 1  # strengths change the output


def test_sweep_keeps_an_existing_sheet_and_never_writes_over_its_input(tiny_weights, tmp_path):
    image, sheet = tmp_path / "in.png", tmp_path / "sheet.png"
    Image.new("RGB", (20, 20)).save(image)
    sheet.write_bytes(b"an earlier sheet")
    base = ["sweep", "--x", "seg", "--steps", "2", "--cell", "20", "-w", str(tiny_weights)]
    kept = runner.invoke(app, [*base, str(image), "-o", str(sheet)])
    assert kept.exit_code == 1 and "exists; it was kept" in kept.output and sheet.read_bytes() == b"an earlier sheet"
    assert runner.invoke(app, [*base, str(image), "-o", str(sheet), "--overwrite"]).exit_code == 0
    assert sheet.read_bytes() != b"an earlier sheet"
    same = runner.invoke(app, [*base, str(image), "-o", str(image), "--overwrite"])
    assert same.exit_code == 2 and "would overwrite an input" in same.output


def test_sweep_rejects_same_axis_and_bad_steps(tiny_weights, tmp_path):
    image = tmp_path / "in.png"
    Image.new("RGB", (20, 20)).save(image)
    base = ["sweep", str(image), "-o", str(tmp_path / "s.png"), "-w", str(tiny_weights)]
    same = runner.invoke(app, [*base, "--x", "seg", "--y", "segmentation"])
    assert same.exit_code == 2 and "same task" in same.output
    steps = runner.invoke(app, [*base, "--x", "seg", "--steps", "1"])
    assert steps.exit_code == 2 and "at least 2" in steps.output
    unknown = runner.invoke(app, [*base, "--x", "blur"])
    assert unknown.exit_code == 2 and "valid tasks" in unknown.output


def test_tasks_table_says_how_the_architecture_combines_tasks():
    from mixtask.cli.report import _how_to_combine

    assert "any strengths" in _how_to_combine("film")
    assert _how_to_combine("single").startswith("one task at a time, strengths 0 or 1")
