"""`mixtask apply`: files, folders, stdin/stdout, naming rules, damaged inputs, atomic writes."""

from __future__ import annotations

import errno
import io
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner

from mixtask import fileio, images
from mixtask.apply import run as pipeline
from mixtask.apply.run import ApplyOptions, apply_paths, is_slug
from mixtask.cli import app
from mixtask.errors import MixtaskError
from mixtask.tasks import DEFAULT_TASK_SET

RNG = np.random.default_rng(1)


def picture(height: int = 32, width: int = 48, channels: int = 3) -> Image.Image:
    return Image.fromarray(RNG.integers(0, 256, (height, width, channels), dtype=np.uint8).squeeze())


def write(path: Path, image: Image.Image | None = None, **options) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    (image or picture()).save(path, **options)
    return path


@pytest.fixture
def run(tiny_weights):
    """Invoke `mixtask apply ... -w tiny` and return the result (stdout/stderr separate)."""

    def invoke(*args: str, stdin: bytes | None = None):
        return CliRunner().invoke(app, ["apply", *map(str, args), "-w", str(tiny_weights)], input=stdin)

    return invoke


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_single_file_goes_beside_input_with_slug(run, tmp_path):
    source = write(tmp_path / "cat.png")
    result = run(source, "--task", "seg,style1=0.5")
    assert result.exit_code == 0, result.stderr
    target = tmp_path / "cat.seg+style1_0.5.png"
    assert "wrote" in result.stderr and target.name in result.stderr
    out = Image.open(target)
    assert out.format == "PNG" and out.size == (48, 32)
    assert not np.array_equal(np.asarray(out), np.asarray(Image.open(source)))


def test_output_file_suffix_picks_format(run, tmp_path):
    source = write(tmp_path / "cat.png")
    assert run(source, "-t", "denoise", "-o", tmp_path / "out" / "x.jpg").exit_code == 0
    assert Image.open(tmp_path / "out" / "x.jpg").format == "JPEG"
    result = run(source, "-t", "denoise", "-o", tmp_path / "x.png", "--format", "webp")
    assert result.exit_code == 1 and "disagrees" in result.stderr


def test_format_and_quality(run, tmp_path):
    source = write(tmp_path / "in" / "a.png", picture(64, 64))
    assert run(source, "-t", "denoise", "-o", tmp_path / "lo", "--format", "jpg", "-q", "20").exit_code == 0
    assert run(source, "-t", "denoise", "-o", tmp_path / "hi", "--format", "jpg", "-q", "95").exit_code == 0
    low, high = tmp_path / "lo" / "a.jpg", tmp_path / "hi" / "a.jpg"
    assert Image.open(low).format == "JPEG" and low.stat().st_size < high.stat().st_size
    assert run(source, "-t", "denoise", "-o", tmp_path / "w", "-f", "webp").exit_code == 0
    assert Image.open(tmp_path / "w" / "a.webp").format == "WEBP"


def test_default_format_follows_input(run, tmp_path):
    for name in ("a.jpg", "b.webp", "c.bmp", "d.gif"):
        write(tmp_path / "in" / name)
    assert run(tmp_path / "in", "-t", "denoise", "-o", tmp_path / "out").exit_code == 0
    assert files_in(tmp_path / "out") == ["a.jpg", "b.webp", "c.png", "d.png"]


def test_folder_recursion_mirrors_subfolders(run, tmp_path):
    src = tmp_path / "photos"
    for name in ("a.png", "sub/b.jpg", "sub/deeper/c.png", ".hidden/d.png", ".e.png"):
        write(src / name)
    (src / "notes.txt").write_text("not an image, not an error")
    flat = run(src, "-t", "denoise", "-o", tmp_path / "flat")
    assert flat.exit_code == 0 and files_in(tmp_path / "flat") == ["a.png"]
    deep = run(src, "-t", "denoise", "-o", tmp_path / "deep", "--recursive")
    assert deep.exit_code == 0, deep.stderr
    assert files_in(tmp_path / "deep") == ["a.png", "sub/b.jpg", "sub/deeper/c.png"]
    assert "3 processed, 0 skipped, 0 failed" in deep.stderr


def test_recursive_beside_inputs_and_output_folder_inside_input(run, tmp_path):
    src = tmp_path / "photos"
    write(src / "a.png"), write(src / "sub" / "b.png")
    assert run(src, "-t", "seg", "-r").exit_code == 0
    assert files_in(src) == ["a.png", "a.seg.png", "sub/b.png", "sub/b.seg.png"]
    # -o inside the input tree: it is not scanned as input, now or on a second run
    assert run(src, "-t", "denoise", "-r", "-o", src / "out").exit_code == 0
    assert run(src, "-t", "denoise", "-r", "-o", src / "out", "--skip-existing").exit_code == 0
    assert files_in(src / "out") == ["a.png", "sub/b.png"]


def test_own_outputs_are_not_inputs(run, tmp_path):
    write(tmp_path / "a.png")
    write(tmp_path / "party.seg.png")  # a user's file: no `party.*` beside it, so it is an input
    assert run(tmp_path, "-t", "seg").exit_code == 0
    assert run(tmp_path, "-t", "denoise=0.5").exit_code == 0
    assert files_in(tmp_path) == [
        "a.denoise_0.5.png", "a.png", "a.seg.png", "party.seg.denoise_0.5.png", "party.seg.png",
        "party.seg.seg.png", "tiny.safetensors",
    ]  # fmt: skip


def test_slug_recognition():
    assert is_slug("recon", DEFAULT_TASK_SET) and is_slug("seg+style1_0.6", DEFAULT_TASK_SET)
    assert is_slug(DEFAULT_TASK_SET.slug(DEFAULT_TASK_SET.parse("denoise=0.25,style2")), DEFAULT_TASK_SET)
    assert not is_slug("holiday", DEFAULT_TASK_SET) and not is_slug("seg_x", DEFAULT_TASK_SET)


def test_output_dir_equal_to_input_folder_keeps_slug(run, tmp_path):
    write(tmp_path / "a.png")
    assert run(tmp_path / "a.png", "-t", "seg", "-o", tmp_path).exit_code == 0
    assert (tmp_path / "a.seg.png").is_file()


def test_stdin_to_stdout(run, tmp_path):
    buffer = io.BytesIO()
    picture(32, 40).save(buffer, "JPEG")
    result = run("-", "-t", "style2", stdin=buffer.getvalue())
    assert result.exit_code == 0, result.stderr
    out = Image.open(io.BytesIO(result.stdout_bytes))
    assert out.format == "JPEG" and out.size == (40, 32)
    to_file = run("-", "-t", "style2", "-o", tmp_path / "s.webp", stdin=buffer.getvalue())
    assert to_file.exit_code == 0 and Image.open(tmp_path / "s.webp").format == "WEBP"
    assert "must be the only input" in run("-", tmp_path / "s.webp", "-t", "seg", stdin=b"").stderr


def test_file_to_stdout(run, tmp_path):
    result = run(write(tmp_path / "a.png"), "-t", "seg", "-o", "-")
    assert result.exit_code == 0 and Image.open(io.BytesIO(result.stdout_bytes)).size == (48, 32)


def test_alpha_is_carried_unchanged(run, tmp_path):
    rgba = picture(32, 48, 4)
    source = write(tmp_path / "a.png", rgba)
    assert run(source, "-t", "style1", "--format", "jpg").exit_code == 0  # JPEG cannot hold alpha -> PNG
    out = Image.open(tmp_path / "a.style1.png")
    assert out.mode == "RGBA" and out.size == rgba.size
    np.testing.assert_array_equal(np.asarray(out)[..., 3], np.asarray(rgba)[..., 3])
    result = run(source, "-t", "style1", "-o", tmp_path / "x.jpg")
    assert result.exit_code == 1 and "transparency" in result.stderr


def test_exif_orientation_swaps_dims(run, tmp_path):
    exif = Image.Exif()
    exif[0x0112] = 6
    source = write(tmp_path / "rot.jpg", picture(32, 48), exif=exif)
    assert run(source, "-t", "denoise").exit_code == 0
    assert Image.open(tmp_path / "rot.denoise.jpg").size == (32, 48)


def test_unusual_modes(run, tmp_path):
    src = tmp_path / "in"
    write(src / "gray.png", picture(32, 40, 1))
    write(src / "cmyk.jpg", picture(32, 40).convert("CMYK"))
    write(src / "pal.png", picture(32, 40).quantize(8), transparency=0)
    write(src / "deep.png", Image.fromarray(RNG.integers(0, 65536, (32, 40), dtype=np.uint16)))
    result = run(src, "-t", "denoise", "-o", tmp_path / "out")
    assert result.exit_code == 0, result.stderr
    modes = {name: Image.open(tmp_path / "out" / name).mode for name in files_in(tmp_path / "out")}
    assert modes == {"cmyk.jpg": "RGB", "deep.png": "RGB", "gray.png": "RGB", "pal.png": "RGBA"}


def test_bad_files_are_reported_and_skipped(run, tmp_path):
    src = tmp_path / "in"
    write(src / "good.png")
    (src / "bad.jpg").write_bytes(b"this is not a jpeg")
    buffer = io.BytesIO()
    picture().save(buffer, "PNG")
    (src / "cut.png").write_bytes(buffer.getvalue()[:200])
    result = run(src, "-t", "seg", "-o", tmp_path / "out")
    assert result.exit_code == 1
    assert files_in(tmp_path / "out") == ["good.png"]
    assert "1 processed, 0 skipped, 2 failed" in result.stderr
    assert "bad.jpg: not a readable image" in result.stderr and "cut.png: not a readable image" in result.stderr


def test_never_overwrites_an_input(run, tmp_path):
    source = write(tmp_path / "a.png")
    before = source.read_bytes()
    result = run(source, "-t", "seg", "-o", source, "--overwrite")
    assert result.exit_code == 1 and "would overwrite an input" in result.stderr
    assert source.read_bytes() == before


def test_existing_output_kept_unless_overwrite(run, tmp_path):
    source = write(tmp_path / "a.png")
    target = tmp_path / "a.seg.png"
    target.write_bytes(b"older result")
    kept = run(source, "-t", "seg")
    assert kept.exit_code == 1 and "a.seg.png exists (--overwrite replaces" in kept.stderr
    assert target.read_bytes() == b"older result"
    assert run(source, "-t", "seg", "--overwrite").exit_code == 0
    assert Image.open(target).size == (48, 32)


def test_skip_existing_resumes_a_folder(run, tmp_path):
    src = tmp_path / "in"
    for name in ("a.png", "b.png", "c.png"):
        write(src / name)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "b.png").write_bytes(b"done earlier")
    result = run(src, "-t", "seg", "-o", tmp_path / "out", "--skip-existing")
    assert result.exit_code == 0 and "2 processed, 1 skipped, 0 failed" in result.stderr
    assert (tmp_path / "out" / "b.png").read_bytes() == b"done earlier"
    assert "contradict" in run(src, "-t", "seg", "--skip-existing", "--overwrite").stderr


def test_two_inputs_with_one_output_name(run, tmp_path):
    write(tmp_path / "a.png"), write(tmp_path / "a.bmp")
    result = run(tmp_path, "-t", "seg")
    assert result.exit_code == 1 and "is also the output of" in result.stderr
    assert (tmp_path / "a.seg.png").is_file()


def no_debris(folder: Path) -> bool:
    return not [p for p in folder.rglob("*") if p.name.endswith(".part")]


def test_interrupted_encode_leaves_nothing(run, tmp_path, monkeypatch):
    source = write(tmp_path / "a.png")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(images, "encode", interrupted)
    result = run(source, "-t", "seg")
    assert result.exit_code == 130 and not (tmp_path / "a.seg.png").exists() and no_debris(tmp_path)


def test_interrupted_rename_leaves_nothing(run, tmp_path, monkeypatch):
    source = write(tmp_path / "a.png")

    def interrupted(*args):
        raise KeyboardInterrupt

    monkeypatch.setattr(fileio.os, "replace", interrupted)
    monkeypatch.setattr(fileio.os, "link", interrupted)  # the final move without --overwrite
    result = run(source, "-t", "seg")
    assert result.exit_code == 130 and not (tmp_path / "a.seg.png").exists() and no_debris(tmp_path)


def test_disk_full_stops_the_run(run, tmp_path, monkeypatch):
    for name in ("a.png", "b.png"):
        write(tmp_path / "in" / name)

    def full(*args):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio.os, "replace", full)
    monkeypatch.setattr(fileio.os, "link", full)  # the final move without --overwrite
    result = run(tmp_path / "in", "-t", "seg", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "disk full" in result.stderr
    assert files_in(tmp_path / "out") == []


def test_unknown_task_fails_before_touching_files(run, tmp_path):
    source = write(tmp_path / "a.png")
    result = run(source, "-t", "sharpen", "-o", tmp_path / "new")
    assert result.exit_code == 2 and not (tmp_path / "new").exists()
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "unknown task 'sharpen'" in lines[0] and "denoise" in lines[0]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["a.png", "b.png", "-o", "x.png"], "names one file, but there are several inputs"),
        (["in", "-o", "x.jpg"], "names one file"),
        (["a.png", "-o", "x.bmp"], "cannot write .bmp"),
        (["missing.png"], "missing.png: no such file"),
        (["empty"], "no images in"),
        (["a.png", "--device", "gpu"], "unknown device 'gpu'"),
    ],
)
def test_usage_errors(run, tmp_path, monkeypatch, args, message):
    monkeypatch.chdir(tmp_path)
    write(tmp_path / "a.png"), write(tmp_path / "b.png"), write(tmp_path / "in" / "c.png")
    (tmp_path / "empty").mkdir()
    result = run(*args, "-t", "seg")
    assert result.exit_code == 1 and message in result.stderr
    assert files_in(tmp_path) == ["a.png", "b.png", "in/c.png", "tiny.safetensors"]


def test_python_api(tiny_weights, tmp_path):
    write(tmp_path / "a.png"), write(tmp_path / "b.png")
    options = ApplyOptions(task="seg", output=str(tmp_path / "out"), weights=str(tiny_weights), format="webp")
    summary = apply_paths([str(tmp_path)], options)
    assert summary.exit_code == 0 and summary.count(pipeline.PROCESSED) == 2
    assert files_in(tmp_path / "out") == ["a.webp", "b.webp"]
    with pytest.raises(MixtaskError, match="quality"):
        ApplyOptions(task="seg", quality=0)


def test_outputs_get_the_usual_permissions_not_the_temp_files_0600(tmp_path):
    import os
    import stat

    from mixtask.fileio import UMASK, write_bytes_atomic

    target = tmp_path / "out.png"
    write_bytes_atomic(target, b"data")
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o666 & ~UMASK


def test_an_output_under_a_plain_file_is_one_line_not_a_traceback(run, tmp_path, rgb_image):
    folder = tmp_path / "work"
    folder.mkdir()
    source = folder / "in.png"
    rgb_image.save(source)
    blocker = folder / "blocker"
    blocker.write_text("a file, not a folder")
    result = run(source, "--task", "seg", "-o", blocker / "out.png")
    assert result.exit_code == 1 and "Traceback" not in result.output
    assert f"cannot write {blocker / 'out.png'}" in result.output
    assert sorted(p.name for p in folder.iterdir()) == ["blocker", "in.png"]  # nothing left behind


def test_a_second_task_option_is_an_error_not_a_silent_replacement(run, tmp_path, rgb_image):
    source = tmp_path / "in.png"
    rgb_image.save(source)
    result = run(source, "-t", "seg", "-t", "style1")
    assert result.exit_code == 1 and "--task given 2 times" in result.output
    assert not list(tmp_path.glob("in.*.png"))


def test_a_symlink_loop_in_a_folder_fails_alone(run, tmp_path, rgb_image):
    folder = tmp_path / "in"
    folder.mkdir()
    rgb_image.save(folder / "good.png")
    (folder / "loop.png").symlink_to(folder / "loop.png")
    result = run(folder, "--task", "seg", "-o", tmp_path / "out")
    assert result.exit_code == 1 and "Traceback" not in result.output and "loop.png" in result.output
    assert files_in(tmp_path / "out") == ["good.png"]


@pytest.mark.parametrize(
    ("data", "message"), [(b"", "<stdin>: empty"), (b"not an image", "cannot identify image file the data")]
)
def test_bad_stdin_says_what_it_got(run, data, message):
    result = run("-", "--task", "seg", "-o", "-", stdin=data)
    assert result.exit_code == 1 and message in result.output and "BytesIO" not in result.output


def test_sigterm_stops_a_folder_run_cleanly_with_143(tmp_path, tiny_weights, rgb_image):
    import signal
    import subprocess
    import sys
    import time

    folder = tmp_path / "in"
    folder.mkdir()
    for i in range(400):
        rgb_image.save(folder / f"{i:03d}.png")
    command = [sys.executable, "-c", "from mixtask.cli import main; main()", "apply", str(folder), "-t", "seg",
               "-o", str(tmp_path / "out"), "-w", str(tiny_weights)]  # fmt: skip
    process = subprocess.Popen(command, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 60
    while not list((tmp_path / "out").glob("*.png")) and time.monotonic() < deadline:
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == 143 and "mixtask: terminated" in stderr and "Traceback" not in stderr
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]  # no .part left


def test_an_output_another_run_writes_meanwhile_is_kept_not_replaced(run, tmp_path, rgb_image, monkeypatch):
    from mixtask.fileio import OutputExists, write_bytes_atomic
    from mixtask.inference.conditions import TaskVector

    folder = tmp_path / "work"
    folder.mkdir()
    source = folder / "in.png"
    rgb_image.save(source)
    target = folder / "out.png"
    translate = TaskVector.run

    def racing(*args, **kwargs):  # the other run finishes its write while we translate
        target.write_bytes(b"the other run's output")
        return translate(*args, **kwargs)

    monkeypatch.setattr(TaskVector, "run", racing)
    result = run(source, "--task", "style1", "-o", target)
    assert result.exit_code == 1 and "another run wrote it meanwhile" in result.output
    assert target.read_bytes() == b"the other run's output"
    assert sorted(p.name for p in folder.iterdir()) == ["in.png", "out.png"]  # no temporary file left
    with pytest.raises(OutputExists):
        write_bytes_atomic(target, b"mine", replace=False)
    write_bytes_atomic(target, b"mine")  # --overwrite's way
    assert target.read_bytes() == b"mine"


def test_a_killed_writers_part_file_is_cleaned_up_and_a_live_ones_kept(tmp_path):
    import os
    import subprocess
    import sys

    from mixtask.fileio import write_bytes_atomic

    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead_pid = int(finished.stdout)  # that process has exited (its pid is free unless reused at once)
    stale = tmp_path / f".out.png.{dead_pid}.x1y2.part"
    live = tmp_path / f".out.png.{os.getpid()}.a1b2.part"  # this process: alive
    other = tmp_path / f".other.png.{dead_pid}.c3d4.part"  # another output's: not ours to judge now
    for path in (stale, live, other):
        path.write_bytes(b"half")
    write_bytes_atomic(tmp_path / "out.png", b"data")
    assert not stale.exists() and live.exists() and other.exists()
    assert (tmp_path / "out.png").read_bytes() == b"data"


def test_dot_slash_dash_is_the_file_named_dash_not_stdin(run, tmp_path, rgb_image, monkeypatch):
    monkeypatch.chdir(tmp_path)
    rgb_image.save(tmp_path / "-", format="PNG")
    result = run("./-", "--task", "denoise", "-o", "./-.out.png")
    assert result.exit_code == 0, result.output
    assert Image.open(tmp_path / "-.out.png").size == rgb_image.size


def test_an_interrupt_counts_the_writes_that_finished(run, tmp_path, monkeypatch):
    """Ctrl-C while a write is queued: the writes that still complete are in the summary, not 'not done'."""
    import threading

    from mixtask.apply import run as apply_module

    for name in ("a.png", "b.png", "c.png"):
        write(tmp_path / "in" / name)
    translate, write_file, calls, written = apply_module._translate, apply_module._write, [], threading.Semaphore(0)

    def counted_write(*args):
        outcome = write_file(*args)
        written.release()
        return outcome

    def interrupt_on_the_third(job, decoding, run_state):
        calls.append(job)
        if len(calls) == 3:  # both earlier writes are on disk, perhaps not yet taken into the summary
            assert written.acquire(timeout=10) and written.acquire(timeout=10)
            raise KeyboardInterrupt
        return translate(job, decoding, run_state)

    monkeypatch.setattr(apply_module, "_write", counted_write)
    monkeypatch.setattr(apply_module, "_translate", interrupt_on_the_third)
    result = run(tmp_path / "in", "-t", "denoise", "-o", tmp_path / "out")
    assert result.exit_code == 130
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["a.png", "b.png"]
    assert "2 processed" in result.stderr and "1 not done" in result.stderr


def test_load_model_translates_a_path_a_pil_image_or_an_array_under_text_or_a_dict(tiny_weights, tmp_path):
    from mixtask import load_model

    model = load_model(tiny_weights)
    rgba = np.random.default_rng(0).integers(0, 256, (20, 28, 4), dtype=np.uint8)
    Image.fromarray(rgba, "RGBA").save(tmp_path / "a.png")
    from_path = model.translate(tmp_path / "a.png", "seg=1,style1=0.5")
    from_text_path = model.translate(str(tmp_path / "a.png"), {"segment": 1, "style1": 0.5})  # aliases too
    from_pil = model.translate(Image.open(tmp_path / "a.png"), {"seg": 1.0, "style1": 0.5})
    from_array = model.translate(rgba, {"seg": 1, "style1": 0.5})
    assert from_path.mode == "RGBA" and from_path.size == (28, 20)
    assert np.array_equal(np.asarray(from_path), np.asarray(from_text_path))
    assert np.array_equal(np.asarray(from_pil), np.asarray(from_path))
    assert from_array.shape == rgba.shape and np.array_equal(from_array, np.asarray(from_path))  # alpha kept
    for image, task, message in [
        (rgba.astype(np.float32), "seg", "uint8"),
        (42, "seg", "not int"),
        (tmp_path / "missing.png", "seg", "no such file"),
        (rgba, {"seg": "high"}, "not a number"),
        (rgba, {"seg": 1, "segment": 0.5}, "given twice"),
        (rgba, {"blur": 1}, "unknown task 'blur'"),
        (rgba, {"seg": 2}, r"must be in \[0, 1\]"),
    ]:
        with pytest.raises(MixtaskError, match=message):
            model.translate(image, task)


def test_suffix_names_outputs_beside_inputs_and_in_folders_and_a_rerun_skips_them(run, tmp_path):
    write(tmp_path / "in" / "a.png"), write(tmp_path / "in" / "b.jpg")
    assert run(tmp_path / "in", "-t", "seg", "--cutout", "black", "--suffix", "_cut").exit_code == 0
    assert files_in(tmp_path / "in") == ["a.png", "a_cut.png", "b.jpg", "b_cut.jpg"]
    again = run(tmp_path / "in", "-t", "seg", "--cutout", "black", "--suffix", "_cut")  # earlier results are no inputs
    assert again.exit_code == 1 and "a_cut_cut" not in " ".join(files_in(tmp_path / "in"))  # kept, not re-translated
    write(tmp_path / "more" / "c.png")
    assert run(tmp_path / "more", "-t", "denoise", "--suffix", "-x", "-o", tmp_path / "out").exit_code == 0
    assert files_in(tmp_path / "out") == ["c-x.png"]
    bad = run(tmp_path / "in" / "a.png", "-t", "seg", "--suffix", "/x")
    assert bad.exit_code == 2 and "a suffix is part of a file name" in bad.stderr


def test_a_folder_run_logs_one_line_per_file_when_stderr_is_not_a_terminal(run, tmp_path):
    write(tmp_path / "in" / "a.png"), write(tmp_path / "in" / "b.png")
    (tmp_path / "in" / "c.png").write_bytes(b"not an image")
    result = run(tmp_path / "in", "-t", "denoise", "-o", tmp_path / "out")
    lines = result.stderr.splitlines()
    counted = [line.split("] ", 1) for line in lines if line.startswith("[")]
    assert [count for count, _ in counted] == ["[1/3", "[2/3", "[3/3"]  # one line per file, in finishing order
    assert {f"{tmp_path / 'in' / 'a.png'}: processed", f"{tmp_path / 'in' / 'b.png'}: processed"} < {
        rest for _, rest in counted
    }
    assert any(rest.startswith(f"{tmp_path / 'in' / 'c.png'}: failed (not a readable image") for _, rest in counted)


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_the_terminal_progress_shows_the_file_and_images_per_second(tmp_path, monkeypatch):
    from mixtask.apply.plan import Job, Outcome

    monkeypatch.setenv("COLUMNS", "120")
    terminal = Terminal()
    with pipeline.Reporter(terminal, 2) as reporter:
        reporter.advance(Outcome(Job(tmp_path / "first.png"), pipeline.PROCESSED))
        reporter.progress.refresh()
        shown = terminal.getvalue()
    assert "first.png" in shown and "img/s" in shown and "1/2" in shown


def test_a_one_image_run_does_not_import_rich(tmp_path, tiny_weights):
    """Rich's console costs about 0.03 s of start-up; a one-image run prints one plain line and needs none."""
    write(tmp_path / "a.png")
    code = (
        "import sys; from mixtask.cli import main; sys.argv = ['mixtask', 'apply', sys.argv[1], '-t', 'denoise',"
        " '-w', sys.argv[2]]\ntry: main()\nexcept SystemExit as done: assert done.code == 0, done.code\n"
        "assert 'rich.console' not in sys.modules, 'rich.console was imported'"
    )
    subprocess.run([sys.executable, "-c", code, str(tmp_path / "a.png"), str(tiny_weights)], check=True)
