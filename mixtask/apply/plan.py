"""What `mixtask apply` will do, decided before any image is decoded: its options, one job per
input with its output's name (the naming rules of `mixtask.apply.run`), and the rules for targets
(never over an input, never twice, an existing output kept unless asked).
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from mixtask import images
from mixtask.errors import MixtaskError, UsageError
from mixtask.tasks import TaskSet

STDIO = Path("-")


def argument_path(text: str) -> Path:
    """A command-line path: `-` alone is stdin (or stdout for -o); `./-` and the like are the file named `-`
    (made absolute, since Path("./-") == Path("-"))."""
    path = Path(text)
    return path.absolute() if path == STDIO and text != "-" else path


FILE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp")
PROCESSED, SKIPPED, KEPT, FAILED = "processed", "skipped", "kept", "failed"


@dataclass(frozen=True)
class ApplyOptions:
    """Everything `mixtask apply` takes besides its inputs."""

    task: str | None = None  # with task_map: the strengths of the other tasks (see mixtask.inference.taskmaps)
    output: Path | None = None
    recursive: bool = False
    overwrite: bool = False
    skip_existing: bool = False
    format: str | None = None  # png, jpeg (or jpg), webp; None = the input's format
    quality: int = 92
    weights: Path | None = None
    device: str = "auto"  # auto, cpu, cuda, cuda:N or mps: checked by infer.Translator
    precision: str = "auto"
    tile: int | None = None  # None = automatic
    task_map: Path | None = None  # an image of per-pixel strengths of the map_tasks (names, R, G, B)
    map_tasks: str | None = None
    cutout: str | None = None  # with seg in the task: alpha (None: the default), black or mask (mixtask.apply.cutout)
    bgcolor: str | None = None  # R,G,B[,A]: the alpha cut-out on this colour
    mask: Path | None = None  # inpaint where this mask (or a folder of masks) is white (mixtask.apply.usermask)
    suffix: str | None = None  # output name `<stem><suffix>.<ext>`; None: `<stem>.<task slug>` beside the input

    @property
    def chosen_format(self) -> str | None:
        """--format, or PNG under --mask (lossless: the kept pixels stay exact); None: the input's format."""
        return self.format or ("png" if self.mask is not None else None)

    def __post_init__(self):
        for name in ("output", "weights", "task_map", "mask"):  # API callers may pass str
            if getattr(self, name) is not None:
                object.__setattr__(self, name, Path(getattr(self, name)))
        if self.overwrite and self.skip_existing:
            raise UsageError("--overwrite and --skip-existing contradict each other; give one")
        if self.suffix is not None and ("/" in self.suffix or "\\" in self.suffix or self.suffix in (".", "..")):
            raise UsageError(f"--suffix {self.suffix!r}: a suffix is part of a file name (no / or \\)")
        if not 1 <= self.quality <= 100:
            raise UsageError(f"--quality {self.quality} is outside 1..100")
        if images.normalize_format(self.format) not in (None, *images.WRITABLE_FORMATS):
            raise UsageError(f"unknown --format {self.format!r}; use png, jpg or webp")


@dataclass(frozen=True)
class Job:
    """One input and where its output goes: `out_file` if fixed, else `out_dir/stem.<ext>`."""

    source: Path  # STDIO for stdin
    out_dir: Path | None = None
    stem: str = ""
    out_file: Path | None = None  # -o FILE, or STDIO

    @property
    def name(self) -> str:
        return "<stdin>" if self.source == STDIO else str(self.source)

    def target(self, format_name: str) -> Path:
        return self.out_file or self.out_dir / f"{self.stem}.{images.extension(format_name)}"


@dataclass(frozen=True)
class Outcome:
    job: Job
    status: str  # PROCESSED, SKIPPED, KEPT or FAILED
    message: str = ""
    target: Path | None = None


# ----------------------------------------------------------------------------- planning


def plan_jobs(inputs: list[Path], options: ApplyOptions, task_set: TaskSet, slug: str) -> list[Job]:
    """Expand inputs into jobs and name every output (`slug`: the condition's); raises before any file is touched."""
    if not inputs:
        raise UsageError("no inputs given; pass image files, folders, or - for stdin")
    if STDIO in inputs:
        jobs = [_stdin_job(inputs, options)]
    else:
        exclude = {options.output.resolve()} if options.output not in (None, STDIO) else set()
        exclude |= {options.task_map.resolve()} if options.task_map else set()  # not an input in a folder scan
        sources = _collect_sources(inputs, options.recursive, exclude, task_set, options.suffix)
        kind = _output_kind(options, many=len(sources) > 1 or any(path.is_dir() for path in inputs))
        jobs = [_job(source, root, kind, options, slug) for source, root in sources]
    if jobs[0].out_file == STDIO and sys.stdout.isatty():
        raise MixtaskError("stdout is a terminal, not a file; redirect it (> out.png) or give -o FILE")
    return jobs


def _stdin_job(inputs: list[Path], options: ApplyOptions) -> Job:
    if len(inputs) > 1:
        raise UsageError("'-' (stdin) must be the only input")
    if sys.stdin is None or sys.stdin.isatty():
        raise MixtaskError("no image on stdin; pipe one in, e.g. mixtask apply - --task seg < photo.jpg > out.png")
    output = options.output or STDIO
    if output != STDIO and _output_kind(options, many=False) != "file":
        raise MixtaskError(f"reading stdin: -o must be a file name (.png, .jpg, .webp) or -, not {output}")
    return Job(STDIO, out_file=output)


def _collect_sources(inputs, recursive, exclude, task_set, suffix=None) -> list[tuple[Path, Path | None]]:
    """(file, folder it was found in or None) for every input image, without duplicates."""
    found, seen = [], set()
    for path in inputs:
        if path.is_dir():
            entries = [(file, path) for file in _folder_images(path, recursive, exclude, task_set, suffix)]
            if not entries:
                raise MixtaskError(f"no images in {path} ({_scan_hint(recursive)})")
        elif path.exists():
            entries = [(path, None)]
        else:
            raise MixtaskError(f"{path}: no such file or folder")
        for file, root in entries:
            if _resolved(file) not in seen:
                seen.add(_resolved(file))
                found.append((file, root))
    return found


def _resolved(path: Path) -> Path:
    """The real path, or the path itself where it cannot be resolved (a symlink loop): that file then fails
    on its own when it is read, and the rest of the folder runs."""
    try:
        return path.resolve()
    except (OSError, RuntimeError):
        return path


def _scan_hint(recursive: bool) -> str:
    suffixes = ", ".join(sorted(images.INPUT_EXTENSIONS))
    return f"looked for {suffixes}" + ("" if recursive else "; add --recursive for sub-folders")


def _folder_images(
    root: Path, recursive: bool, exclude: set[Path], task_set: TaskSet, suffix: str | None
) -> list[Path]:
    files: list[Path] = []
    for folder, names in _walk(root, recursive, exclude):
        candidates = [folder / name for name in sorted(names) if images.is_input_name(name)]
        candidates = [file for file in candidates if _resolved(file) not in exclude]  # e.g. the task map
        files += _drop_own_outputs(candidates, task_set, suffix)
    return files


def _walk(root: Path, recursive: bool, exclude: set[Path]) -> Iterator[tuple[Path, list[str]]]:
    """Folders top-down in sorted order, skipping hidden ones and the output folder."""
    for folder, dirs, names in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and _resolved(Path(folder) / d) not in exclude)
        yield Path(folder), names
        if not recursive:
            return


def _drop_own_outputs(files: list[Path], task_set: TaskSet, suffix: str | None = None) -> list[Path]:
    """Leave out `<stem>.<slug>.<ext>` (or `<stem><suffix>.<ext>`) files that sit beside an input `<stem>.*`:
    earlier results."""
    stems = {file.stem for file in files}

    def earlier(stem: str) -> bool:
        if suffix:
            return stem.endswith(suffix) and stem[: -len(suffix)] in stems
        return _looks_like_output(stem, stems, task_set)

    return [file for file in files if not earlier(file.stem)]


def _looks_like_output(stem: str, stems: set[str], task_set: TaskSet) -> bool:
    dots = [i for i, char in enumerate(stem) if char == "."]
    return any(stem[:i] in stems and is_slug(stem[i + 1 :], task_set) for i in dots)


def is_slug(text: str, task_set: TaskSet) -> bool:
    """Whether `text` is something `TaskSet.slug` produces, e.g. `seg+style1_0.6` or `recon`, or a task map's."""
    return text == "recon" or all(_is_slug_part(part, task_set.names) for part in text.split("+"))


def _is_slug_part(part: str, names: tuple[str, ...]) -> bool:
    if part in names or (part.startswith("map-") and len(part) > 4):  # `map-<stem>`: taskmaps.map_slug
        return True
    name, _, value = part.rpartition("_")
    return name in names and re.fullmatch(r"\d*\.?\d+(e-?\d+)?", value) is not None


def _output_kind(options: ApplyOptions, many: bool) -> str:
    """'beside' (no -o), 'file' (-o FILE or -o -) or 'dir' (-o DIR)."""
    output = options.output
    if output is None:
        return "beside"
    if output.is_dir():
        return "dir"
    if output == STDIO or output.suffix.lower() in FILE_SUFFIXES:
        if many:
            raise MixtaskError(f"-o {output} names one file, but there are several inputs; give a folder, e.g. -o out")
        _check_file_format(output, options.format)
        return "file"
    if output.exists():
        raise MixtaskError(f"-o {output} is an existing file, not a folder; name the output .png, .jpg or .webp")
    if output.suffix and output.suffix.lower() in _pil_suffixes():  # (PIL loads every plugin to list them: 50 ms)
        raise MixtaskError(f"cannot write {output.suffix} files; name the output .png, .jpg or .webp")
    return "dir"


def _pil_suffixes() -> set[str]:
    from PIL import Image

    return set(Image.registered_extensions())


def _check_file_format(output: Path, requested: str | None) -> None:
    implied = images.format_from_extension(output)
    wanted = images.normalize_format(requested)
    if implied and wanted and implied != wanted:
        raise MixtaskError(f"--format {requested} disagrees with -o {output}; drop one of them")


def _job(source: Path, root: Path | None, kind: str, options: ApplyOptions, slug: str) -> Job:
    if kind == "file":
        return Job(source, out_file=options.output)
    out_dir = source.parent
    if kind == "dir":
        out_dir = options.output / (source.parent.relative_to(root) if root else Path())
    if options.suffix is not None:
        return Job(source, out_dir, source.stem + options.suffix)
    beside = out_dir.resolve() == _resolved(source.parent)
    return Job(source, out_dir, f"{source.stem}.{slug}" if beside else source.stem)


# ----------------------------------------------------------------------------- targets


class Targets:
    """Decides whether an output may be written: never over an input, never twice, existing kept."""

    def __init__(self, jobs: list[Job], options: ApplyOptions):
        self.inputs = {_resolved(job.source) for job in jobs if job.source != STDIO}
        if options.task_map:
            self.inputs.add(options.task_map.resolve())
        self.claimed: dict[Path, Job] = {}
        self.options = options

    def check(self, job: Job, target: Path) -> Outcome | None:
        """An outcome that stops this job, or None if `target` may be written."""
        if target == STDIO:
            return None
        resolved = _resolved(target)
        if resolved in self.inputs:
            return Outcome(job, FAILED, f"{job.name}: output {target} would overwrite an input; choose another -o")
        if resolved in self.claimed:
            other = self.claimed[resolved].name
            return Outcome(job, FAILED, f"{job.name}: output {target} is also the output of {other}; rename one")
        if target.is_dir():
            return Outcome(job, FAILED, f"{job.name}: output {target} is a folder")
        if target.exists():
            return self._existing(job, target)
        return None

    def _existing(self, job: Job, target: Path) -> Outcome | None:
        if self.options.skip_existing:
            return Outcome(job, SKIPPED, target=target)
        if self.options.overwrite:
            return None
        return Outcome(job, KEPT, f"{job.name}: output {target} exists (--overwrite replaces, --skip-existing skips)")

    def claim(self, job: Job, target: Path) -> None:
        if target != STDIO:
            self.claimed[_resolved(target)] = job


def predicted_format(job: Job, options: ApplyOptions, alpha: bool = False) -> str | None:
    """The output format guessed from names alone (None for stdin): lets --skip-existing skip decoding.
    `alpha`: the output has alpha whatever the input (a cut-out)."""
    if job.source == STDIO:
        return None
    implied = images.format_from_extension(job.out_file) if job.out_file not in (None, STDIO) else None
    return implied or images.choose_format(options.chosen_format, images.format_from_extension(job.source), alpha)


def output_format(job: Job, input_format: str | None, has_alpha: bool, options: ApplyOptions) -> str:
    """The real output format, known once the image is decoded (and so whether the output has alpha)."""
    if job.out_file not in (None, STDIO):
        implied = images.format_from_extension(job.out_file)
        if has_alpha and implied not in images.ALPHA_FORMATS:
            raise MixtaskError(f"{job.name}: the output has transparency, which JPEG cannot hold; "
                               "write -o NAME.png or .webp (or --bgcolor R,G,B for an opaque cut-out)")  # fmt: skip
        return implied
    return images.choose_format(options.chosen_format, input_format, has_alpha)
