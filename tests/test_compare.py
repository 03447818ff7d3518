"""`mixtask compare`: every registered architecture trained, scored and timed on tiny data; resumable."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from safetensors.torch import save_file
from typer.testing import CliRunner

from mixtask.cli import app
from mixtask.nets import registry as archs
from mixtask.studies.compare import CompareOptions, run_compare
from mixtask.studies.compare_report import ArchRow, Comparison, eval_numbers, to_markdown
from mixtask.training import StyleSpec, TrainOptions
from tests.conftest import interrupt_at, make_dataset
from tests.fakes import tiny_vgg_state


@pytest.fixture(scope="module")
def assets(tmp_path_factory) -> dict[str, Path]:
    """A train and a val split (photos, disc masks, cut-outs), a style image, a tiny VGG."""
    root = tmp_path_factory.mktemp("compare-assets")
    data = make_dataset(root / "data", photos=3)
    make_dataset(root / "other", photos=2, seed=1)
    for sub in ("photos", "masks/isnet", "cutouts"):
        (root / "other" / sub / "train").rename(data / sub / "val")
    Image.fromarray(np.random.default_rng(2).integers(0, 256, (40, 48, 3), dtype=np.uint8)).save(root / "style1.png")
    save_file(tiny_vgg_state(), str(root / "vgg.safetensors"))
    return {"data": data, "style": root / "style1.png", "vgg": root / "vgg.safetensors"}


def tiny_compare(assets, out: Path, archs_: tuple[str, ...] = (), **changes) -> CompareOptions:
    options = TrainOptions(
        str(assets["data"]), str(out), (StyleSpec("style1", str(assets["style"])),), steps=2, size=32, batch=2,
        vgg=str(assets["vgg"]), width=4, res_blocks=1, precision="fp32", device="cpu", preview_every=0,
        checkpoint_every=0,
    )  # fmt: skip
    return CompareOptions(replace(options, **changes), out, archs_, eval_count=2, timing_size=64, timing_repeats=1,
                          quiet=True)  # fmt: skip


@pytest.fixture(scope="module")
def compared(assets, tmp_path_factory) -> tuple[Path, Comparison]:
    """One comparison of every registered architecture, shared by the tests below (they do not change it)."""
    out = tmp_path_factory.mktemp("compare")
    return out, run_compare(tiny_compare(assets, out))


def _table_rows(markdown: str) -> dict[str, dict[str, str]]:
    lines = [line for line in markdown.splitlines() if line.startswith("| ")]
    names = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [dict(zip(names, (cell.strip() for cell in line.strip("|").split("|")))) for line in lines[1:]]
    return {row["arch"]: row for row in rows}


def _is_number(text: str) -> bool:
    try:
        float(text.replace(",", ""))
    except ValueError:
        return False
    return True


def test_every_architecture_gets_a_row_of_numbers(compared):
    out, comparison = compared
    assert [row.arch for row in comparison.rows] == list(archs.names())
    assert comparison.failed() == [], [row.error for row in comparison.failed()]
    table = _table_rows((out / "compare.md").read_text())
    assert list(table) == list(archs.names())
    for row in comparison.rows:
        cells = table[row.arch]
        assert cells["status"] == "ok"
        for column in ("params", "recon PSNR", "inpaint PSNR", "denoise PSNR", "seg composites IoU",
                       "style1 Gram ratio", "train img/s", "infer ms/MP"):  # fmt: skip
            assert _is_number(cells[column]), (row.arch, column, cells[column])
        mix_cells = [cells[label] for label in ("denoise+style1 PSNR", "denoise+seg PSNR", "seg+style1 PSNR")]
        assert all(_is_number(cell) for cell in mix_cells) if row.mixes else mix_cells == ["n/a"] * 3


def test_json_holds_every_number_and_the_plot_is_a_png(compared):
    out, _ = compared
    data = json.loads((out / "compare.json").read_text())
    assert data["failed"] == [] and not data["interrupted"]
    assert (data["header"]["budget"], data["header"]["size"], data["header"]["eval"]["count"]) == (2, 32, 2)
    assert data["header"]["machine"]["cpu"] and data["header"]["machine"]["date"]
    for row in data["rows"]:
        assert row["params"] > 0 and row["train_img_s"] > 0 and row["infer_ms_per_mp"] > 0 and row["steps"] == 2
        assert 0 < row["tasks"]["recon PSNR"] < 100 and 0 <= row["tasks"]["seg composites IoU"] <= 1
        assert set(row["quality"]) == {"restoration_psnr", "seg_iou"}
        assert json.loads(Path(row["eval_json"]).read_text())["split"] == "val"
    with Image.open(out / "compare.png") as image:
        assert image.format == "PNG" and image.width > 500


def test_a_second_call_reuses_every_run(compared, assets):
    out, first = compared
    runs = out / "runs"
    files = [path for arch in archs.names() for path in (runs / arch).glob("*") if path.is_file()]
    before = {path: path.stat().st_mtime_ns for path in files}
    logs = {arch: (runs / arch / "log.jsonl").read_text() for arch in archs.names()}
    again = run_compare(tiny_compare(assets, out))
    assert {path: path.stat().st_mtime_ns for path in files} == before  # no training, evaluation or timing
    assert {arch: (runs / arch / "log.jsonl").read_text() for arch in archs.names()} == logs
    assert [row.tasks for row in again.rows] == [row.tasks for row in first.rows]
    assert [row.infer_ms_per_mp for row in again.rows] == [row.infer_ms_per_mp for row in first.rows]


def test_a_run_with_other_options_is_refused_not_retrained(compared, assets, tmp_path):
    out, _ = compared
    shutil.copytree(out / "runs" / "film", tmp_path / "runs" / "film")
    comparison = run_compare(tiny_compare(assets, tmp_path, ("film",), seed=1))
    (row,) = comparison.rows
    assert row.status == "failed" and "holds a run with other options (seed 0, now 1" in row.error
    assert "FAILED: train" in (tmp_path / "compare.md").read_text()


def test_an_interrupted_comparison_resumes_and_a_broken_architecture_does_not_stop_it(assets, tmp_path, monkeypatch):
    import mixtask.training

    monkeypatch.setitem(archs._REGISTRY, "broken", "tests.test_compare:BrokenNet")
    monkeypatch.setitem(archs._REGISTRY, "film-copy", "mixtask.nets.film:MixNet")
    options = tiny_compare(assets, tmp_path, ("film", "broken", "film-copy"))
    real_train = mixtask.training.train
    with monkeypatch.context() as patch:  # Ctrl-C after step 1 of the first training
        patch.setattr(mixtask.training, "train", lambda *args, **kw: real_train(*args, **kw, callback=interrupt_at(1)))
        stopped = run_compare(options)
    assert stopped.interrupted and [row.status for row in stopped.rows] == ["interrupted", "pending", "pending"]
    assert "(interrupted: partial)" in (tmp_path / "compare.md").read_text() and (tmp_path / "compare.png").is_file()
    assert not (tmp_path / "runs" / "broken").exists()  # the comparison stopped at the interrupted one
    comparison = run_compare(options)
    assert [row.status for row in comparison.rows] == ["ok", "failed", "ok"] and not comparison.interrupted
    assert comparison.rows[1].error == "train: RuntimeError: this architecture is broken"
    assert "RuntimeError" in (tmp_path / "runs" / "broken" / "error.txt").read_text()
    events = [json.loads(line).get("event") for line in (tmp_path / "runs/film/log.jsonl").read_text().splitlines()]
    assert [event for event in events if event] == ["start", "stopped", "resume", "done"]
    table = _table_rows((tmp_path / "compare.md").read_text())
    assert table["broken"]["status"] == "FAILED: train" and table["film-copy"]["status"] == "ok"


class BrokenNet:
    """An architecture whose construction fails, as one under development might."""

    mixes, continuous, task_maps = True, True, False

    def __init__(self, config):
        raise RuntimeError("this architecture is broken")


# ----------------------------------------------------------------------------- report, CLI


HEADER = {
    "budget": 4000, "size": 128, "batch": 8, "seed": 0, "width": 32, "res_blocks": 5, "mix_method": 3,
    "precision": "auto", "data": "../shared/data", "styles": {"style1": "s1.jpg"},
    "eval": {"split": "val", "count": 16, "size": 128},
    "timing": {"size": 512, "precision": "fp32", "repeats": 5, "device": "cpu"},
    "machine": {"cpu": "AMD EPYC", "torch_threads": 2, "cores": 2, "torch": "2.14.1", "date": "2026-11-24 10:00 UTC"},
    "command": "mixtask compare --budget 4000",
}  # fmt: skip


def test_report_formatting_with_fixed_numbers():
    film = ArchRow("film", "ok", params=1695235, mixes=True, train_img_s=7.456, infer_ms_per_mp=1634.4,
                   tasks={"recon PSNR": 25.123, "seg composites IoU": 0.61234, "style1 Gram ratio": 0.4},
                   mix_scores={"denoise+style1 PSNR": 20.5})  # fmt: skip
    single = ArchRow("single", "ok", params=8000000, mixes=False, train_img_s=3.0, infer_ms_per_mp=900.0,
                     tasks={"recon PSNR": 27.0, "seg composites IoU": 0.7})  # fmt: skip
    broken = ArchRow("tsn", "failed", error="evaluate: ValueError: bad shape", params=123)
    text = to_markdown(Comparison(HEADER, [film, single, broken]))
    lines = text.splitlines()
    table = [line for line in lines if line.startswith("|")]
    assert table[0] == ("| arch | status | params | recon PSNR | seg composites IoU | style1 Gram ratio "
                        "| denoise+style1 PSNR | train img/s | infer ms/MP |")  # fmt: skip
    assert table[1] == "|---|---|---:|---:|---:|---:|---:|---:|---:|"
    assert table[2] == "| film | ok | 1,695,235 | 25.12 | 0.612 | 0.400 | 20.50 | 7.5 | 1634 |"
    assert table[3] == "| single | ok | 8,000,000 | 27.00 | 0.700 | — | n/a | 3.0 | 900 |"
    assert table[4] == "| tsn | FAILED: evaluate | 123 | — | — | — | — | — | — |"
    assert "- budget: 4000 steps per architecture, 128 px crops, batch 8, seed 0, width 32" in text
    assert "- machine: AMD EPYC, 2 threads (2 cores), torch 2.14.1; date: 2026-11-24 10:00 UTC" in text
    assert "- tsn failed at evaluate: ValueError: bad shape" in lines


def test_plot_labels_points_on_one_spot_together_and_keeps_labels_apart():
    from matplotlib.figure import Figure

    from mixtask.studies.compare_report import _panel

    rows = [
        ArchRow("film", "ok", params=1_700_000, quality={"seg_iou": 0.1740}),
        ArchRow("encin", "ok", params=1_693_000, quality={"seg_iou": 0.1735}),  # on film's spot
        ArchRow("tsn", "ok", params=1_816_000, quality={"seg_iou": 0.1760}),  # near: its own label, moved up
        ArchRow("single", "ok", params=10_000_000, quality={"seg_iou": 0.30}),
    ]
    axes = Figure(figsize=(5, 4), dpi=100).subplots()
    _panel(axes, rows, "seg_iou", "seg IoU")
    labels = {text.get_text(): text for text in axes.texts}
    assert set(labels) == {"film, encin", "tsn", "single"}
    offset = {name: text.get_position()[1] for name, text in labels.items()}  # label above its point, in points
    assert offset["film, encin"] == offset["single"] == 4
    assert offset["tsn"] > 10  # lifted clear of the film label it would have covered


def test_eval_numbers_pick_one_headline_per_group_by_kind():
    result = {"groups": [
        {"name": "recon", "kind": "recon", "rows": {"model": {"psnr": 30.0}, "identity": {"psnr": 100.0}}},
        {"name": "inpaint", "kind": "inpaint", "rows": {"model": {"psnr": 20.0, "psnr_damaged": 9.0}}},
        {"name": "seg composites", "kind": "seg", "rows": {"model": {"psnr": 15.0, "iou": 0.5}}},
        {"name": "seg photos (exact)", "kind": "seg", "rows": {"model": {"psnr": 14.0, "iou": 0.7}}},
        {"name": "paint", "kind": "style",
         "rows": {"model": {"style_distance": 0.3}, "identity": {"style_distance": 1.2}}},
        {"name": "denoise+seg", "kind": "mix", "rows": {"model": {"psnr": 18.0, "iou": 0.4}}},
    ]}  # fmt: skip
    tasks, mixes, quality = eval_numbers(result)
    assert tasks == {"recon PSNR": 30.0, "inpaint PSNR": 20.0, "seg composites IoU": 0.5,
                     "seg photos (exact) IoU": 0.7, "paint Gram ratio": 0.25}  # fmt: skip
    assert mixes == {"denoise+seg PSNR": 18.0}
    assert quality == {"restoration_psnr": 25.0, "seg_iou": 0.6}


def test_cli_builds_the_options_and_exits_1_when_an_architecture_failed(monkeypatch, tmp_path):
    import mixtask.studies.compare

    seen = []

    def fake_compare(options, log):
        seen.append(options)
        return Comparison(HEADER, [ArchRow("film", "ok", params=10), ArchRow("tsn", "failed", error="train: boom")])

    monkeypatch.setattr(mixtask.studies.compare, "run_compare", fake_compare)
    args = ["compare", "--data", str(tmp_path), "--budget", "7", "--size", "64", "--out", str(tmp_path / "c"), "--arch",
            "film", "--arch", "tsn", "--batch", "3", "--style", "style1=s.jpg", "--eval-count", "5"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1 and "failed: tsn" in result.stderr
    assert "| film | ok | 10 |" in result.stdout
    (options,) = seen
    assert (options.train.steps, options.train.size, options.train.batch, options.eval_count) == (7, 64, 3, 5)
    assert options.archs == ("film", "tsn") and options.train.styles == (StyleSpec("style1", "s.jpg"),)


def test_cli_unknown_architecture_is_a_one_line_error(assets, tmp_path):
    args = ["compare", "--data", str(assets["data"]), "--budget", "1", "--size", "32", "--out", str(tmp_path),
            "--arch", "nope"]  # fmt: skip
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 1
    assert result.stderr.strip().startswith("mixtask: error: unknown architecture nope (known: film")
    assert not (tmp_path / "compare.md").exists()
