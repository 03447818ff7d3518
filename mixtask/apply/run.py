"""`mixtask apply`: run one task vector (paper, Sec. 3.1) over files, folders or stdin.

The flow is CLI -> `apply_paths` -> `infer.Translator` -> model. Decoding of the next images
and encoding/writing of the last one run in a small thread pool while the model computes,
because the model dominates the time and the I/O can hide behind it.

Naming rules (see also the README):
- no `-o`: beside the input, as `<stem>.<task-slug>.<ext>` (slug from `TaskSet.slug`);
- `-o FILE` (a name ending in .png/.jpg/.jpeg/.webp): exactly one input file; its suffix
  picks the format; `-o -` writes to stdout;
- `-o DIR` (anything else): `DIR/<stem>.<ext>`, sub-folders mirrored under `--recursive`;
  the slug is added whenever an output would land in its input's own folder.
Inputs are never overwritten. An existing output is kept (and the run exits 1) unless
`--overwrite`; `--skip-existing` skips it quietly to resume a half-done folder. Folder scans
ignore hidden files, non-image suffixes and files that look like our own outputs
(`<stem>.<slug>.<ext>` beside an input `<stem>.*`), and never descend into the output folder.

This module runs the jobs and reports; `apply_plan` makes them (options, naming, target rules).
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Iterable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from mixtask import images
from mixtask.apply import cutout, usermask
from mixtask.apply.plan import (
    FAILED,
    KEPT,
    PROCESSED,
    SKIPPED,
    STDIO,
    ApplyOptions,
    Job,
    Outcome,
    Targets,
    is_slug,
    output_format,
    plan_jobs,
    predicted_format,
)
from mixtask.errors import MixtaskError
from mixtask.fileio import OutputExists, write_bytes_atomic
from mixtask.inference import blending, inpainting
from mixtask.inference.conditions import Condition, parse_condition

__all__ = ["PROCESSED", "ApplyOptions", "ApplySummary", "apply_paths", "is_slug", "plan_jobs", "render"]

PREFETCH = 2  # decodes running ahead of the model
MAX_PENDING_WRITES = 2
MAX_KEPT_LINES = 5  # a re-run over a done folder should not print a line per file


@dataclass
class ApplySummary:
    """The outcome of every job, in the order they finished."""

    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, *statuses: str) -> int:
        return sum(outcome.status in statuses for outcome in self.outcomes)

    def problems(self) -> list[Outcome]:
        return [outcome for outcome in self.outcomes if outcome.status in (KEPT, FAILED)]

    @property
    def exit_code(self) -> int:
        """1 if any file failed or an existing output blocked it, else 0."""
        return 1 if self.problems() else 0


# ----------------------------------------------------------------------------- running


def apply_paths(inputs: Iterable[Path | str], options: ApplyOptions, log=None, translator=None) -> ApplySummary:
    """Translate every input; prints progress and a summary on `log` (a text stream such as sys.stderr) if given."""
    from mixtask.weights import read_info

    task_set = translator.task_set if translator else read_info(options.weights).task_set
    # an unknown task or a bad task map fails here, before any file is touched
    condition = parse_condition(options.task, options.task_map, options.map_tasks, task_set)
    jobs = plan_jobs([Path(path) for path in inputs], options, task_set, condition.slug)
    translator = translator or _load_translator(options)
    condition.check(translator)  # a mix or strength the architecture cannot take: one error, not one per file
    cut = cutout.plan_cutout(options.cutout, options.bgcolor, task_set, condition.uniform)
    user_mask = usermask.plan_user_mask(options.mask, task_set, condition.uniform)
    summary = ApplySummary()
    try:
        with Reporter(log, len(jobs)) as reporter:
            run = _Run(translator, condition, options, Targets(jobs, options), cut, user_mask)
            _run(jobs, run, summary, reporter.advance)
    finally:
        print_summary(summary, log, len(jobs))
    return summary


def _load_translator(options: ApplyOptions):
    from mixtask.inference.translator import Translator

    return Translator.from_file(
        options.weights, device=options.device, precision=options.precision, tile=options.tile or None
    )


@dataclass
class _Run:
    """What the loop needs besides the job: shared by its small steps."""

    translator: object
    condition: Condition
    options: ApplyOptions
    targets: Targets
    cutout: cutout.Cutout | None = None  # seg's rendering (mixtask.apply.cutout), None without seg
    user_mask: usermask.UserMask | None = None  # --mask: inpaint there only (mixtask.apply.usermask)
    pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=2, thread_name_prefix="mixtask-io")
    )


def _run(jobs, run: _Run, summary: ApplySummary, advance) -> None:
    pool = run.pool
    writes: deque[Future] = deque()
    try:
        for job, ready in _prefetched(jobs, run):
            result = ready if isinstance(ready, Outcome) else _translate(job, ready, run)
            if isinstance(result, Future):
                writes.append(result)
            else:
                _record(summary, result, advance)
            while writes and (len(writes) > MAX_PENDING_WRITES or writes[0].done()):
                _record(summary, writes.popleft().result(), advance)  # a write error aborts here
        while writes:
            _record(summary, writes.popleft().result(), advance)
    finally:
        # Ctrl-C or an abort: drop queued work; a write already running finishes atomically, and is counted.
        pool.shutdown(wait=True, cancel_futures=True)
        for write in writes:
            if write.done() and not write.cancelled() and write.exception() is None:
                _record(summary, write.result(), advance)


def _record(summary: ApplySummary, outcome: Outcome, advance) -> None:
    summary.outcomes.append(outcome)
    advance(outcome)


def _prefetched(jobs: Iterable[Job], run: _Run) -> Iterator[tuple[Job, Outcome | Future]]:
    """Each job with either an outcome decided from names alone, or its decode running ahead."""
    queue: deque[tuple[Job, Outcome | Future]] = deque()
    for job in jobs:
        queue.append((job, _precheck(job, run) or run.pool.submit(_decode, job)))
        if len(queue) > PREFETCH:
            yield queue.popleft()
    while queue:
        yield queue.popleft()


def _precheck(job: Job, run: _Run) -> Outcome | None:
    guess = predicted_format(job, run.options, cutout.has_alpha(run.cutout, False))
    return run.targets.check(job, job.target(guess)) if guess else None


def _decode(job: Job) -> images.LoadedImage:
    if job.source == STDIO:
        return images.load_image(sys.stdin.buffer.read(), "<stdin>")
    return images.load_image(job.source, job.name)


def _translate(job: Job, decoding: Future, run: _Run) -> Outcome | Future:
    """Decode result -> checked target -> model -> a queued write (or a failed outcome)."""
    try:
        loaded = decoding.result()
        alpha = cutout.has_alpha(run.cutout, loaded.alpha is not None)
        format_name = output_format(job, loaded.format, alpha, run.options)
        target = job.target(format_name)
        stop = run.targets.check(job, target)
        if stop:
            return stop
        run.targets.claim(job, target)
        image = _translated(run, loaded, job)
    except MixtaskError as error:
        return Outcome(job, FAILED, _named(job, error))
    return run.pool.submit(_write, job, target, format_name, image, loaded, run.options)


def _translated(run: _Run, loaded: images.LoadedImage, job: Job):
    mask = None
    if run.user_mask is not None:
        height, width = loaded.rgb.shape[:2]
        mask = run.user_mask.for_image(None if job.source == STDIO else job.source, height, width)
    return render(run.translator, loaded, run.condition, run.cutout, mask)


def render(translator, loaded: images.LoadedImage, condition: Condition, cut: cutout.Cutout | None = None, mask=None):
    """The output as a PIL image: the translation with the input's alpha kept, seg's cut-out (`cut`, from
    `cutout.plan_cutout`), or with a user `mask` (H, W) bool an inpainting of the masked pixels only (both
    planned for a uniform condition only). A restoration (inpaint, denoise) runs with its gate sharpened at full
    strength and is finished by blending what the network generated into the pixels around it (`blending.restore`)."""
    if mask is not None:
        return images.to_pil(inpainting.inpaint(translator, loaded.rgb, mask, condition.uniform), loaded.alpha)
    if condition.uniform is not None and blending.blends(translator.task_set, condition.uniform):
        return images.to_pil(blending.restore(translator, loaded.rgb, condition.uniform), loaded.alpha)
    if cut is None or cut.mode == "black":
        return images.to_pil(condition.run(translator, loaded.rgb), loaded.alpha)
    rgb, alpha, grey = cutout.render(translator, loaded.rgb, cut, condition.uniform)
    if grey is not None:
        return images.grey_pil(grey)
    if alpha is not None and loaded.alpha is not None:  # the input's own transparency stays transparent
        alpha = (alpha.astype(np.uint16) * loaded.alpha // 255).astype(np.uint8)
    return images.to_pil(rgb, alpha)


def _named(job: Job, error: Exception) -> str:
    message = str(error)
    return message if message.startswith(job.name) else f"{job.name}: {message}"


def _write(job: Job, target: Path, format_name: str, image, loaded: images.LoadedImage, options: ApplyOptions):
    """Encode and write atomically -> Outcome. A write error (disk full, no permission) aborts the run. Without
    --overwrite an output another run wrote meanwhile is kept (ours is dropped), never replaced."""
    try:
        icc = loaded.icc_profile if image.mode != "L" else None  # an RGB profile does not fit a grey mask
        data = images.encode(image, format_name, options.quality, icc)
    except (OSError, ValueError) as error:
        return Outcome(job, FAILED, f"{job.name}: cannot encode as {format_name} ({error})")
    if target == STDIO:
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    else:
        try:
            write_bytes_atomic(target, data, replace=options.overwrite)
        except OutputExists as error:
            return Outcome(job, KEPT, f"{job.name}: {error}")
    return Outcome(job, PROCESSED, target=target)


# ----------------------------------------------------------------------------- reporting


class Reporter:
    """Progress of a run of several images on `log`: on a terminal, a Rich bar (the last file, count, img/s,
    elapsed, ETA); otherwise (a log file, a pipe) one line per file, `[3/10] photos/a.jpg: processed`. Rich is
    imported only for the bar: its console takes about 0.03 s to import, which a one-image run does not need."""

    def __init__(self, log, total: int):
        self.progress, self.log, self.total, self.done = None, log, total, 0
        terminal = log is not None and log.isatty()
        self.lines = log is not None and not terminal and total > 1
        if terminal and total > 1:
            from mixtask.apply.progressbar import progress_bar

            self.progress = progress_bar(log)

    def __enter__(self) -> Reporter:
        if self.progress:
            self.progress.start()
            self.task_id = self.progress.add_task("translating", total=self.total)
        return self

    def __exit__(self, *exc_info) -> None:
        if self.progress:
            self.progress.stop()

    def advance(self, outcome: Outcome) -> None:
        self.done += 1
        if self.progress:
            self.progress.update(self.task_id, advance=1, description=Path(outcome.job.name).name)
        elif self.lines:
            message = outcome.message.removeprefix(f"{outcome.job.name}: ")
            note = f" ({message})" if message and outcome.status != PROCESSED else ""
            print(f"[{self.done}/{self.total}] {outcome.job.name}: {outcome.status}{note}", file=self.log, flush=True)


def summary_lines(summary: ApplySummary, total: int) -> list[str]:
    """`wrote X` for a single image; else counts, every failure, and the first few kept outputs."""
    done = summary.count(PROCESSED)
    if total == 1 and not summary.outcomes:
        return []  # stopped before its one image was done: the error (or interrupt) line says why
    if total == 1 and done == 1:
        target = summary.outcomes[0].target
        return [] if target == STDIO else [f"wrote {target}"]
    if total == 1 and summary.outcomes[0].status == FAILED:  # one image, one line: why it failed
        return [f"mixtask: error: {summary.outcomes[0].message}"]
    counts = f"{done} processed, {summary.count(SKIPPED, KEPT)} skipped, {summary.count(FAILED)} failed"
    unfinished = total - len(summary.outcomes)
    if unfinished:
        counts += f", {unfinished} not done"
    kept = [outcome for outcome in summary.outcomes if outcome.status == KEPT]
    lines = [counts] + [f"  failed: {o.message}" for o in summary.outcomes if o.status == FAILED]
    lines += [f"  kept: {o.message}" for o in kept[:MAX_KEPT_LINES]]
    if len(kept) > MAX_KEPT_LINES:
        lines.append(f"  kept: {len(kept) - MAX_KEPT_LINES} more existing outputs (--skip-existing skips them quietly)")
    return lines


def print_summary(summary: ApplySummary, log, total: int) -> None:
    if log is None:
        return
    for line in summary_lines(summary, total):
        print(line, file=log, flush=True)
