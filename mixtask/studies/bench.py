"""`mixtask bench`: how fast the model runs here, per image size and precision (README: "Speed").

Per size and precision it measures
- model only: `Translator.translate_tensor` on a float tensor (the network, no image I/O);
- end to end: JPEG bytes -> decode -> `translate_array` -> JPEG bytes;
- the output's PSNR against fp32 (the quality side of the precision rule, see `devices`);
- the peak resident memory while the row ran (sampled from /proc; the process-wide peak
  from getrusage where /proc is missing).
Times are the best of `repeats` runs after one warm-up run (which also builds the oneDNN
kernels for that shape; it is reported separately as `first_ms`).

Without trained weights, `--random` benchmarks a full-width model (width 32, 5 residual
blocks) whose FiLM generator is random, as the tests' tiny models: the speed is the same,
and the PSNR is a stand-in for the trained model's.
"""

from __future__ import annotations

import contextlib
import datetime
import json
import os
import platform
import resource
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from mixtask.errors import MixtaskError
from mixtask.tensors import from_uint8

DEFAULT_SIZES = ((256, 256), (512, 512), (1024, 1024))
RANDOM_SEED = 0


@dataclass(frozen=True)
class BenchOptions:
    """What to measure: sizes (width, height), precisions, device, weights, repeats."""

    sizes: tuple[tuple[int, int], ...] = DEFAULT_SIZES
    precisions: tuple[str, ...] = ("fp32", "bf16")
    device: str = "auto"
    weights: Path | None = None
    random: bool = False  # a random full-width model instead of weights
    repeats: int = 3
    task: str | None = None  # None: every task at strength 0.5
    tile: int | None = None
    model_only: bool = True
    threads: int | None = None  # torch CPU threads; None = torch's default (one per core)


@dataclass
class BenchRow:
    """One size x precision measurement."""

    width: int
    height: int
    precision: str
    model_ms: float | None
    model_s_per_mp: float | None
    e2e_ms: float
    e2e_s_per_mp: float
    first_ms: float
    psnr_vs_fp32: float | None
    peak_rss_mb: float
    cpu_share: float | None = None  # % of the machine's CPU time this process got: < 90 means a busy machine


@dataclass
class BenchReport:
    """Every row plus what was measured where, and the `auto` precision decision."""

    rows: list[BenchRow]
    machine: dict
    model: str
    device: str
    auto_precision: str
    probe_psnr: float | None
    command: str = ""
    notes: list[str] = field(default_factory=list)


def parse_size(text: str) -> tuple[int, int]:
    """`512` -> (512, 512); `6000x4000` -> (6000, 4000) as (width, height)."""
    parts = text.lower().split("x")
    try:
        numbers = [int(part) for part in parts]
    except ValueError:
        numbers = []
    if len(numbers) not in (1, 2) or min(numbers) < 1:
        raise MixtaskError(f"bad size {text!r}: use N (a square) or WxH, e.g. 512 or 6000x4000")
    return (numbers[0], numbers[-1])


def machine_info() -> dict:
    """CPU model, cores, threads torch uses, torch version, date."""
    import torch

    from mixtask.inference.devices import cpu_model

    cpu = cpu_model()
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "cpu": cpu,
        "cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "load_average": _load_average(),
    }


def _load_average() -> str:
    with contextlib.suppress(OSError, AttributeError):
        return " ".join(f"{value:.1f}" for value in os.getloadavg())
    return "n/a"


def synthetic_photo(width: int, height: int, seed: int = RANDOM_SEED) -> np.ndarray:
    """A deterministic photo-like RGB image: smooth colour fields, edges and fine noise."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    coarse = Image.fromarray(rng.integers(0, 256, (max(height // 64, 2), max(width // 64, 2), 3), dtype=np.uint8))
    base = np.asarray(coarse.resize((width, height), Image.Resampling.BICUBIC), dtype=np.int16)
    stripes = ((np.arange(width)[None, :] // 24 + np.arange(height)[:, None] // 24) % 2 * 40 - 20).astype(np.int16)
    noise = rng.integers(-12, 13, (height, width, 3), dtype=np.int16)
    return np.clip(base + stripes[..., None] + noise, 0, 255).astype(np.uint8)


def random_full_width_model(num_tasks: int):
    """The `--random` stand-in: paper-size network, random FiLM generator (as the tests' models)."""
    import torch

    from mixtask.nets.film import ModelConfig
    from mixtask.nets.registry import build_model
    from mixtask.tasks import DEFAULT_TASK_SET
    from mixtask.weights import WeightsInfo

    torch.manual_seed(RANDOM_SEED)
    config = ModelConfig(num_tasks=num_tasks, width=32, res_blocks=5)
    model = build_model(config)
    with torch.no_grad():
        for layer in model.film.layers:
            layer.weight.normal_(0, 0.3)
    return model.eval(), WeightsInfo(Path("random-full-width"), config, DEFAULT_TASK_SET)


def timed_runs(function: Callable[[], object], repeats: int) -> tuple[float, list[float]]:
    """(first call, each of `repeats` further calls) in seconds; the first call warms up."""
    start = time.perf_counter()
    function()
    first = time.perf_counter() - start
    times = []
    for _ in range(max(repeats, 1)):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return first, times


def best_time(function: Callable[[], object], repeats: int) -> tuple[float, float]:
    """(first call, best of `repeats` further calls) in seconds."""
    first, times = timed_runs(function, repeats)
    return first, min(times)


class PeakRss:
    """Peak resident set size while the block runs, sampled every 20 ms from /proc/self/statm."""

    def __init__(self):
        self.peak = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _current(self) -> int:
        try:
            pages = int(Path("/proc/self/statm").read_text().split()[1])
            return pages * os.sysconf("SC_PAGE_SIZE")
        except (OSError, ValueError, IndexError):
            kilobytes = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
            return kilobytes * (1 if sys.platform == "darwin" else 1024)

    def _sample(self) -> None:
        while not self._stop.wait(0.02):
            self.peak = max(self.peak, self._current())

    def __enter__(self) -> PeakRss:
        self.peak = self._current()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._current())


class CpuShare:
    """Share of the whole machine's CPU time (all cores) that this process used in the block, in %.

    About 100 when the benchmark had the machine to itself; 50 when another job took half of
    it (the times are then not this machine's speed). None where /proc/stat is missing.
    """

    def __init__(self):
        self.share: float | None = None

    @staticmethod
    def _machine_ticks() -> int | None:
        try:
            fields = Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:9]
            return sum(int(value) for value in fields)
        except (OSError, ValueError):
            return None

    def __enter__(self) -> CpuShare:
        self._start = (os.times(), self._machine_ticks())
        return self

    def __exit__(self, *exc) -> None:
        (times, ticks), now, ticks_now = self._start, os.times(), self._machine_ticks()
        if ticks is None or ticks_now is None or ticks_now <= ticks:
            return
        used = (now.user - times.user) + (now.system - times.system)
        self.share = round(100 * used * os.sysconf("SC_CLK_TCK") / (ticks_now - ticks), 1)


def _jpeg(rgb: np.ndarray) -> bytes:
    from mixtask.images import encode, to_pil

    return encode(to_pil(rgb), "jpeg", quality=92)


def end_to_end(translator, data: bytes, vector) -> bytes:
    """Decode -> translate -> encode, as `mixtask apply` does for one file."""
    from mixtask.images import load_image

    loaded = load_image(data, "bench.jpg")
    return _jpeg(translator.translate_array(loaded.rgb, vector))


def measure(translator, size: tuple[int, int], vector, options: BenchOptions, reference) -> BenchRow:
    """One row; `reference` (the fp32 output) is None when this row is fp32 itself."""

    width, height = size
    rgb = synthetic_photo(width, height)
    data = _jpeg(rgb)
    megapixels = width * height / 1e6
    with PeakRss() as rss, CpuShare() as cpu:
        model_s = None
        if options.model_only:
            x = from_uint8(rgb)[None]
            _, model_s = best_time(lambda: translator.translate_tensor(x, vector), options.repeats)
        first_s, e2e_s = best_time(lambda: end_to_end(translator, data, vector), options.repeats)
    output = translator.translate_array(rgb, vector)
    quality = None if reference is None else _psnr_uint8(output, reference)
    return BenchRow(
        width, height, translator.precision,
        None if model_s is None else round(model_s * 1000, 1),
        None if model_s is None else round(model_s / megapixels, 3),
        round(e2e_s * 1000, 1), round(e2e_s / megapixels, 3), round(first_s * 1000, 1),
        None if quality is None else round(quality, 2), round(rss.peak / 2**20, 1), cpu.share,
    )  # fmt: skip


def _psnr_uint8(a: np.ndarray, b: np.ndarray) -> float:

    from mixtask.tensors import psnr_db

    return psnr_db(from_uint8(a), from_uint8(b))


def _load(options: BenchOptions, precision: str):
    from mixtask.inference.translator import Translator
    from mixtask.weights import load_weights

    if options.random:
        model, info = random_full_width_model(5)
    else:
        model, info = load_weights(options.weights)
    return Translator(model, info, device=options.device, precision=precision, tile=options.tile)


def run_bench(options: BenchOptions, progress: Callable[[str], None] = lambda text: None) -> BenchReport:
    """Measure every size x precision (fp32 first: it is the quality reference)."""
    import torch

    if options.threads:
        torch.set_num_threads(options.threads)
    precisions = ("fp32", *[p for p in options.precisions if p != "fp32"])
    machine = machine_info()  # before the run: its load average says how busy the machine was
    auto = _load(options, "auto")
    vector = auto.parse_task(options.task) if options.task else (0.5,) * len(auto.task_set)
    references: dict[tuple[int, int], np.ndarray] = {}
    rows = []
    for precision in precisions:
        translator = _load(options, precision)
        for size in options.sizes:
            progress(f"{precision} {size[0]}x{size[1]}")
            row = measure(translator, size, vector, options, references.get(size))
            if precision == "fp32":
                references[size] = translator.translate_array(synthetic_photo(*size), vector)
            if precision in options.precisions:
                rows.append(row)
    return BenchReport(
        rows, machine, str(auto.info.path), str(auto.device), auto.precision, auto.probe_psnr,
        command=" ".join(["mixtask", *sys.argv[1:]]) if sys.argv else "",
    )  # fmt: skip


COLUMNS = (  # short names: the table fits an 80-column terminal
    ("size", lambda r: f"{r.width}x{r.height}"),
    ("prec.", lambda r: r.precision),
    ("model ms", lambda r: _number(r.model_ms, 0)),
    ("model s/MP", lambda r: _number(r.model_s_per_mp, 2)),
    ("e2e ms", lambda r: _number(r.e2e_ms, 0)),
    ("e2e s/MP", lambda r: _number(r.e2e_s_per_mp, 2)),
    ("1st ms", lambda r: _number(r.first_ms, 0)),
    ("PSNR dB", lambda r: "ref." if r.precision == "fp32" else _number(r.psnr_vs_fp32, 1)),
    ("RSS MB", lambda r: _number(r.peak_rss_mb, 0)),
    ("CPU %", lambda r: _number(r.cpu_share, 0)),
)
LEGEND = (
    "model: translate_tensor on a float tensor; e2e: JPEG decode -> translate -> JPEG encode; "
    "s/MP: seconds per megapixel; 1st: first e2e call (kernel set-up); PSNR: output against fp32; "
    "RSS: peak resident memory during the row; CPU: share of the machine's CPU time the row got "
    "(about 100 = the machine was ours; lower = other jobs ran, times are slower than this machine)"
)


def _number(value: float | None, digits: int) -> str:
    return "-" if value is None else f"{value:.{digits}f}"


def summary_lines(report: BenchReport) -> list[str]:
    machine = report.machine
    lines = [
        f"{machine['date']}; {machine['cpu']}, {machine['cores']} cores, torch {machine['torch']} "
        f"({machine['torch_threads']} threads); load average before: {machine['load_average']}",
        f"model: {report.model}; device: {report.device}",
        f"auto precision here: {report.auto_precision}"
        + (f" (probe PSNR of bf16/fp16 against fp32: {report.probe_psnr:.1f} dB)" if report.probe_psnr else ""),
    ]
    return [*lines, *([f"command: {report.command}"] if report.command else []), LEGEND, *report.notes]


def bench_table(report: BenchReport):
    from rich.table import Table

    table = Table(title="mixtask bench", caption="\n".join(summary_lines(report)))
    for name, _ in COLUMNS:
        text = name in ("size", "prec.")
        table.add_column(name, justify="left" if text else "right", no_wrap=text)
    for row in report.rows:
        table.add_row(*(cell(row) for _, cell in COLUMNS))
    return table


def to_markdown(report: BenchReport) -> str:
    header = "| " + " | ".join(name for name, _ in COLUMNS) + " |"
    rule = "|" + "|".join("---" if i < 2 else "---:" for i in range(len(COLUMNS))) + "|"
    body = ["| " + " | ".join(cell(row) for _, cell in COLUMNS) + " |" for row in report.rows]
    notes = [f"- {line}" for line in summary_lines(report)]
    return "\n".join([header, rule, *body, "", *notes]) + "\n"


def to_json(report: BenchReport) -> str:
    return json.dumps(asdict(report), indent=2) + "\n"
