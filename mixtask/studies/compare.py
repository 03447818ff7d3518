"""`mixtask compare`: every registered architecture trained and scored the same way (issue 5).

Each architecture trains in DIR/runs/<arch>/ through the normal `train()` with the same data,
budget, seed and options (its checkpoints make an interrupted comparison resumable), is scored
by `mixtask.evaluation.run.run_evaluation` on the val split (RUN/eval.json), and its loaded weights are
timed through `mixtask.inference.translator.Translator` with bench.py's timer (RUN/speed.json). A stage whose
file exists and is newer than the weights is not redone. DIR/compare.md and .json are rewritten
after every architecture, DIR/compare.png at the end (`mixtask.studies.compare_report`). An architecture
that fails gets a row saying why (and RUN/error.txt with the traceback); the others go on.
"""

from __future__ import annotations

import json
import statistics
import traceback
from collections.abc import Callable
from dataclasses import dataclass, fields, replace
from pathlib import Path

from mixtask.errors import MixtaskError
from mixtask.fileio import write_bytes_atomic
from mixtask.studies.compare_report import ArchRow, Comparison, eval_numbers, write_report
from mixtask.tensors import from_uint8
from mixtask.training.options import TrainOptions, check_options, stage1_steps

RUNS, EVAL_NAME, SPEED_NAME, ERROR_NAME = "runs", "eval.json", "speed.json", "error.txt"
SAME_RUN_IGNORES = ("out", "command", "evaluate")  # may differ between a stored run and this comparison
Log = Callable[[str], None]


@dataclass(frozen=True)
class CompareOptions:
    """What every architecture shares (`train`: its `out` and `arch` are set per run) and how to score it."""

    train: TrainOptions
    out: Path
    archs: tuple[str, ...] = ()  # empty: every registered architecture
    eval_count: int = 16
    eval_split: str = "val"
    timing_size: int = 512
    timing_precision: str = "fp32"  # the same for all: not every architecture has a tuned half-precision path
    timing_repeats: int = 5
    quiet: bool = False  # no training progress bars


def select_archs(wanted: tuple[str, ...]) -> tuple[str, ...]:
    """The given architectures (registry order kept for none given), each once; unknown names are errors."""
    from mixtask.nets.registry import names

    known = names()
    unknown = [name for name in wanted if name not in known]
    if unknown:
        raise MixtaskError(f"unknown architecture {', '.join(unknown)} (known: {', '.join(known)})")
    return tuple(dict.fromkeys(wanted)) or known


def arch_options(options: CompareOptions, arch: str) -> TrainOptions:
    """One architecture's run: DIR/runs/<arch>/, stage 1 length fixed; single tasks only where it cannot mix."""
    train = replace(options.train, out=str(Path(options.out) / RUNS / arch), arch=arch, evaluate=False)
    if capabilities(arch)[0] is False:
        train = replace(train, mix_method=1, mixes=None, synth=None)
    return replace(train, stage1_steps=stage1_steps(train))


# ----------------------------------------------------------------------------- training


def check_same_run(run_dir: Path, wanted: TrainOptions) -> None:
    """A stored run must have been trained with this comparison's options, or its numbers would not compare."""
    from mixtask.training.checkpoint import checkpoint_path, load_checkpoint

    if not checkpoint_path(run_dir).is_file():
        return
    stored = TrainOptions.from_json(load_checkpoint(run_dir)["options"])
    differ = [f"{f.name} {getattr(stored, f.name)!r}, now {getattr(wanted, f.name)!r}" for f in fields(TrainOptions)
              if f.name not in SAME_RUN_IGNORES and getattr(stored, f.name) != getattr(wanted, f.name)]  # fmt: skip
    if differ:
        raise MixtaskError(f"{run_dir} holds a run with other options ({'; '.join(differ)}); "
                           "delete it or compare into another --out")  # fmt: skip


def ensure_trained(options: TrainOptions, quiet: bool, log: Log) -> bool:
    """Train (or resume) unless the weights exist; False when the training was interrupted."""
    from mixtask.training import WEIGHTS_NAME, resume_options, train
    from mixtask.training.checkpoint import checkpoint_path

    run_dir = Path(options.out)
    check_same_run(run_dir, options)
    if (run_dir / WEIGHTS_NAME).is_file():
        log(f"{options.arch}: trained already ({run_dir / WEIGHTS_NAME})")
        return True
    resume = checkpoint_path(run_dir).is_file()
    log(f"{options.arch}: {'resuming' if resume else 'training'} in {run_dir} ({options.steps} steps)")
    return not train(resume_options(run_dir) if resume else options, resume=resume, quiet=quiet).interrupted


def training_speed(run_dir: Path, batch: int) -> tuple[float | None, float | None]:
    """(mean s/step, images/s) from the run's log.jsonl; the first step (warm-up) is left out."""
    from mixtask.training import LOG_NAME
    from mixtask.training.progress import read_records

    records = read_records(run_dir / LOG_NAME)
    starts = [i for i, record in enumerate(records) if record.get("event") == "start"]
    steps = [record for record in records[starts[-1] if starts else 0 :] if "job" in record]
    seconds = [record["seconds"] for record in steps if record["step"] > 1] or [r["seconds"] for r in steps]
    if not seconds or sum(seconds) <= 0:
        return None, None
    per_step = statistics.fmean(seconds)
    return round(per_step, 4), round(batch / per_step, 2)


# ----------------------------------------------------------------------------- evaluation and timing


def is_fresh(path: Path, source: Path) -> bool:
    """`path` exists and was written after `source` (the weights it was computed from)."""
    return path.is_file() and path.stat().st_mtime >= source.stat().st_mtime


def ensure_evaluated(options: CompareOptions, train: TrainOptions, weights: Path, log: Log) -> dict:
    """`mixtask eval`'s result for the weights (RUN/eval.json), computed unless an up-to-date one exists."""
    from mixtask.evaluation.run import EvalOptions, run_evaluation, write_json
    from mixtask.inference.devices import resolve_device

    path = weights.parent / EVAL_NAME
    wanted = {"split": options.eval_split, "count": options.eval_count, "size": train.size}
    if is_fresh(path, weights):
        result = json.loads(path.read_text())
        if {key: result.get(key) for key in wanted} == wanted:
            return result
    log(f"{train.arch}: evaluating on the {options.eval_split} split")
    styles = tuple((spec.name, spec.image) for spec in train.styles)
    vgg = None if train.vgg is None else Path(train.vgg)
    device = str(resolve_device(train.device))
    eval_options = EvalOptions(Path(train.data), weights, options.eval_split, train.size, options.eval_count, vgg,
                               styles=styles, device=device)  # fmt: skip
    result = run_evaluation(eval_options)
    write_json(result, path)
    return result


def timing_settings(options: CompareOptions) -> dict:
    from mixtask.inference.devices import resolve_device

    device = str(resolve_device(options.train.device))
    return {"size": options.timing_size, "precision": options.timing_precision, "repeats": options.timing_repeats,
            "device": device}  # fmt: skip


def time_inference(weights: Path, settings: dict) -> dict:
    """Median ms per megapixel of the weights through Translator on a fixed random image (bench.py's timer)."""

    from mixtask.inference.translator import Translator
    from mixtask.studies.bench import CpuShare, synthetic_photo, timed_runs

    translator = Translator.from_file(weights, device=settings["device"], precision=settings["precision"])
    side = settings["size"]
    x = from_uint8(synthetic_photo(side, side))[None]
    vector = (1.0,) + (0.0,) * (len(translator.task_set) - 1)  # one task at strength 1: valid for every architecture
    with CpuShare() as cpu:
        first, times = timed_runs(lambda: translator.translate_tensor(x, vector), settings["repeats"])
    median_ms = statistics.median(times) * 1000
    return {"settings": settings, "ms_per_mp": round(median_ms / (side * side / 1e6), 1),
            "median_ms": round(median_ms, 1), "first_ms": round(first * 1000, 1),
            "times_ms": [round(t * 1000, 1) for t in times], "cpu_share": cpu.share}  # fmt: skip


def ensure_timed(options: CompareOptions, weights: Path, log: Log) -> dict:
    path, settings = weights.parent / SPEED_NAME, timing_settings(options)
    if is_fresh(path, weights):
        speed = json.loads(path.read_text())
        if speed.get("settings") == settings:
            return speed
    log(f"{weights.parent.name}: timing inference ({settings['precision']}, {settings['size']} px)")
    speed = time_inference(weights, settings)
    write_bytes_atomic(path, (json.dumps(speed, indent=2) + "\n").encode())
    return speed


# ----------------------------------------------------------------------------- one architecture, all of them


def capabilities(arch: str) -> tuple[bool | None, ...]:
    """The architecture class's `mixes`, `continuous` and `task_maps` (None where it does not say)."""
    from mixtask.nets.registry import architecture_class

    cls = architecture_class(arch)
    return tuple(getattr(cls, name, None) for name in ("mixes", "continuous", "task_maps"))


def weights_of(options: CompareOptions, arch: str) -> Path:
    from mixtask.training import WEIGHTS_NAME

    return Path(arch_options(options, arch).out) / WEIGHTS_NAME


def parameter_count(weights: Path) -> int:
    from mixtask.nets.film import count_parameters
    from mixtask.weights import load_weights

    return count_parameters(load_weights(weights)[0])


def setup_stage(row: ArchRow, options: CompareOptions, log: Log) -> bool:
    row.mixes, row.continuous, row.task_maps = capabilities(row.arch)
    return True


def train_stage(row: ArchRow, options: CompareOptions, log: Log) -> bool:
    train = arch_options(options, row.arch)
    if not ensure_trained(train, options.quiet, log):
        return False
    weights = weights_of(options, row.arch)
    row.steps, row.params = train.steps, parameter_count(weights)
    row.s_per_step, row.train_img_s = training_speed(weights.parent, train.batch)
    return True


def evaluate_stage(row: ArchRow, options: CompareOptions, log: Log) -> bool:
    weights = weights_of(options, row.arch)
    result = ensure_evaluated(options, arch_options(options, row.arch), weights, log)
    row.tasks, row.mix_scores, row.quality = eval_numbers(result)
    row.eval_json = str(weights.parent / EVAL_NAME)
    return True


def timing_stage(row: ArchRow, options: CompareOptions, log: Log) -> bool:
    row.infer_ms_per_mp = ensure_timed(options, weights_of(options, row.arch), log)["ms_per_mp"]
    return True


STAGES = (("setup", setup_stage), ("train", train_stage), ("evaluate", evaluate_stage), ("timing", timing_stage))


def fail(row: ArchRow, stage: str, error: Exception, folder: Path, log: Log) -> None:
    """Mark the row failed at `stage`; RUN/error.txt keeps the traceback."""
    message = str(error) if isinstance(error, MixtaskError) else f"{type(error).__name__}: {error}"
    row.status, row.error = "failed", f"{stage}: {message}"
    log(f"{row.arch}: failed at {row.error}")
    folder.mkdir(parents=True, exist_ok=True)
    write_bytes_atomic(folder / ERROR_NAME, traceback.format_exc().encode())


def compare_arch(options: CompareOptions, arch: str, log: Log) -> tuple[ArchRow, bool]:
    """(row, finished): an error of the architecture's own makes a failed row, never a failed comparison."""
    row = ArchRow(arch)
    for stage, run_stage in STAGES:
        try:
            if not run_stage(row, options, log):
                row.status = "interrupted"
                return row, False
        except Exception as error:  # an architecture under development may fail in any way: report it, go on
            fail(row, stage, error, Path(options.out) / RUNS / arch, log)
            return row, True
    row.status = "ok"
    (Path(options.out) / RUNS / arch / ERROR_NAME).unlink(missing_ok=True)
    return row, True


def training_precision(train: TrainOptions) -> str:
    """What `--precision` resolves to for training here, e.g. `bf16 autocast` or `fp32`."""
    from mixtask.inference.devices import resolve_device
    from mixtask.training.distributed import autocast_dtype

    dtype = autocast_dtype(train.precision, str(resolve_device(train.device)))
    return "fp32" if dtype is None else f"{str(dtype).removeprefix('torch.')} autocast"


def header(options: CompareOptions) -> dict:
    from mixtask.studies.bench import machine_info

    train = options.train
    return {
        "budget": train.steps, "size": train.size, "batch": train.batch, "seed": train.seed, "width": train.width,
        "res_blocks": train.res_blocks, "mix_method": train.mix_method, "precision": training_precision(train),
        "data": train.data, "styles": {spec.name: spec.image for spec in train.styles},
        "eval": {"split": options.eval_split, "count": options.eval_count, "size": train.size},
        "timing": timing_settings(options), "machine": machine_info(), "command": train.command,
    }  # fmt: skip


def check_compare(options: CompareOptions) -> None:
    check_options(options.train)
    if not Path(options.train.data).is_dir():
        raise MixtaskError(f"data folder {options.train.data} not found (pass --data DIR, e.g. ../shared/data)")
    if options.eval_count < 2:
        raise MixtaskError(f"--eval-count must be at least 2 (got {options.eval_count})")


def run_compare(options: CompareOptions, log: Log = lambda message: None) -> Comparison:
    """Every selected architecture in turn; stops when a training is interrupted (Ctrl-C).

    The table (compare.md, .json) is rewritten after each architecture, the plot when the comparison ends or stops.
    """
    check_compare(options)
    archs = select_archs(options.archs)
    comparison = Comparison(header(options), [ArchRow(arch) for arch in archs])
    try:
        for i, arch in enumerate(archs):
            log(f"[{i + 1}/{len(archs)}] {arch}")
            comparison.rows[i], finished = compare_arch(options, arch, log)
            comparison.interrupted = not finished
            write_report(comparison, Path(options.out), plot=False)
            if not finished:
                break
    except KeyboardInterrupt:  # a second Ctrl-C, or one outside training: the report still says so
        comparison.interrupted = True
        raise
    finally:
        write_report(comparison, Path(options.out))
    return comparison
