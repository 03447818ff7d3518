"""`mixtask curves`: loss curves from a run's log.jsonl."""

import json

from PIL import Image
from typer.testing import CliRunner

from mixtask.cli import app
from mixtask.training.curves import job_losses, windowed


def _log(tmp_path, rows):
    run = tmp_path / "run"
    run.mkdir()
    (run / "log.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return run


ROWS = [
    {"event": "start", "step": 0},
    *({"step": s, "job": "recon" if s % 2 else "seg", "losses": {"total": 1.0 / s}} for s in range(1, 41)),
    {"step": 41, "job": "joint", "losses": {"recon": 0.5, "seg": 0.25, "seg/seg.adversarial": 9, "total": 0.75}},
]


def test_losses_per_job_and_windows(tmp_path):
    series = job_losses(_log(tmp_path, ROWS) / "log.jsonl")
    assert set(series) == {"recon", "seg"}
    assert series["recon"][0] == (1, 1.0) and series["seg"][-1] == (41, 0.25)  # a joint step counts for each job
    assert windowed([(0, 1.0), (5, 3.0), (10, 5.0)], 10) == [(2.5, 2.0), (10.0, 5.0)]


def test_cli_writes_a_png_and_refuses_a_run_without_log(tmp_path):
    run = _log(tmp_path, ROWS)
    result = CliRunner().invoke(app, ["curves", str(run), "-o", str(tmp_path / "loss.png"), "--window", "10"])
    assert result.exit_code == 0, result.output
    with Image.open(tmp_path / "loss.png") as image:
        assert image.format == "PNG" and image.width > 100
    missing = CliRunner().invoke(app, ["curves", str(tmp_path), "-o", str(tmp_path / "x.png")])
    assert missing.exit_code == 1 and "no training log" in missing.output
