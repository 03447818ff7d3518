"""Start-up overhead of `mixtask apply` beyond importing torch (issue 18: at most 0.25 s).

Times, as fresh processes and interleaved, `import torch` alone and `mixtask apply photo.png -t seg=1,style1=1`
on a 256x256 photo (the issue's case) with the shipped weights (the precision probe cached by a first, untimed
run, as on any second start). Each process also times its own `import torch` from the inside, so a round's
overhead is

    (apply's wall time - its own import of torch) - (the bare process's wall time - its own import of torch)

which leaves the interpreter's start and exit out on both sides and cancels the import's wandering (on the
2-core machines here `import torch` alone moves by 0.5 s between runs, more than the overhead itself). The
apply process imports torch first and then runs the same `main` that the `mixtask` script runs. Run it on an
idle machine:

    python benchmarks/startup.py --repeats 9 --json weights/training/bench/startup.json

`--before DIR` also times, in the same rounds, the mixtask package found in DIR (e.g. a `git worktree` of an
earlier commit), for a side-by-side before and after.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from PIL import Image

# A user's installed package has its bytecode cached; a shell with PYTHONDONTWRITEBYTECODE set (CI, containers)
# would compile every mixtask module on each start, about 0.08 s that no user pays.
ENVIRONMENT = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
PHOTO = Path(__file__).resolve().parent.parent / "examples" / "skimage-astronaut.jpg"
SIDE = 256
MARK, RUN_MARK = "import-torch-s ", "after-import-s "
TIMED_IMPORT = (
    "import sys, time\nstart = time.perf_counter()\nimport torch\n"
    f"print({MARK!r} + repr(time.perf_counter() - start), file=sys.stderr)\n"
)
APPLY = TIMED_IMPORT + (
    "start = time.perf_counter()\ntry:\n    from mixtask.cli import main\n"
    "    sys.argv = ['mixtask', *sys.argv[1:]]\n    main()\n"
    f"finally:\n    print({RUN_MARK!r} + repr(time.perf_counter() - start), file=sys.stderr)\n"
)


def timed(code: str, *args: str, source: Path | None = None) -> tuple[float, ...]:
    """-> (the process's wall time, its own import of torch, [the time from there to the end of `main`]),
    seconds; `source`: a folder holding the mixtask package to run instead of the installed one."""
    environment = ENVIRONMENT if source is None else {**ENVIRONMENT, "PYTHONPATH": str(source)}
    start = time.perf_counter()
    # run from the root folder: `python -c` puts its working folder first on the path, ahead of PYTHONPATH
    command = [sys.executable, "-c", code, *args]
    done = subprocess.run(command, check=True, capture_output=True, env=environment, cwd="/")
    wall = time.perf_counter() - start
    lines = done.stderr.decode().splitlines()
    marked = [float(line.removeprefix(mark)) for mark in (MARK, RUN_MARK) for line in lines if line.startswith(mark)]
    return (wall, *marked)


def network_seconds(rgb: np.ndarray, repeats: int = 5) -> float:
    """Median time of the job's cut-out rendering in this process, warm (`mixtask.apply.cutout.render`: the mask
    under seg alone, the colours under style1 alone): the part of the overhead that is the network's own work."""
    from mixtask.apply import cutout
    from mixtask.inference.translator import Translator

    translator = Translator.from_file()
    vector = translator.parse_task("seg=1,style1=1")
    plan = cutout.plan_cutout(None, None, translator.task_set, vector)
    times = []
    for _ in range(repeats + 1):
        start = time.perf_counter()
        cutout.render(translator, rgb, plan, vector)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times[1:]), 3)


def cpu_name() -> str:
    info = Path("/proc/cpuinfo")
    lines = info.read_text().splitlines() if info.exists() else []
    names = [line.split(":", 1)[1].strip() for line in lines if line.startswith("model name")]
    return names[0] if names else "?"


def summary(rounds: list[tuple[tuple[float, float], tuple[float, float, float]]]) -> dict:
    """Medians over rounds of ((bare wall, bare import), (apply wall, apply import, apply after the import))."""
    overheads = [(wall - imported) - (bare - bare_imported) for (bare, bare_imported), (wall, imported, _) in rounds]
    after_import = [run for _, (_, _, run) in rounds]
    return {
        "overhead_s": round(statistics.median(overheads), 3),
        "overhead_quartiles_s": [round(q, 3) for q in statistics.quantiles(overheads, n=4)],
        # from `import torch` done to the end of `main`: the process's start and exit left out
        "after_import_s": round(statistics.median(after_import), 3),
        "after_import_quartiles_s": [round(q, 3) for q in statistics.quantiles(after_import, n=4)],
        "import_torch_s": round(statistics.median(bare for (bare, _), _ in rounds), 3),
        "apply_s": round(statistics.median(wall for _, (wall, *_) in rounds), 3),
        "apply_minus_import_torch_s": round(statistics.median(wall - bare for (bare, _), (wall, *_) in rounds), 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--before", type=Path, help="a folder holding an earlier mixtask package, timed alongside")
    args = parser.parse_args()
    sources = {"after": None, "before": args.before} if args.before else {"after": None}
    with tempfile.TemporaryDirectory() as work:
        image = Path(work) / "photo.png"
        photo = Image.open(PHOTO).convert("RGB")
        side = min(photo.size)
        photo.crop((0, 0, side, side)).resize((SIDE, SIDE), Image.Resampling.LANCZOS).save(image)
        apply = ["apply", str(image), "-t", "seg=1,style1=1", "-o", str(Path(work) / "out.png"), "--overwrite"]
        image_rgb = np.asarray(Image.open(image))
        for source in sources.values():
            timed(APPLY, *apply, source=source)  # caches the probe and the bytecode
        rounds = {name: [] for name in sources}
        for _ in range(args.repeats):  # interleaved, so that a drift in the machine's speed touches all alike
            for name, source in sources.items():
                rounds[name].append((timed(TIMED_IMPORT), timed(APPLY, *apply, source=source)))
    result = summary(rounds["after"])
    # the network's own share, measured warm in this process: what is left is the start-up proper
    result["network_s"] = network_seconds(image_rgb)
    result["overhead_outside_network_s"] = round(result["overhead_s"] - result["network_s"], 3)
    if args.before:
        result["before"] = summary(rounds["before"])
    result |= {"repeats": args.repeats, "cpu": cpu_name()}
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
