"""Start-up overhead of `mixtask apply` beyond importing torch (issue 18: at most 0.25 s).

Times, as fresh processes, `python -c "import torch"` and `mixtask apply tiny.png -t seg=1,style1=1` on a
64x64 image with the shipped weights (the precision probe cached by a first, untimed run, as on any second
start), and reports the medians and the median of each round's difference. Run it on an idle machine:

    python benchmarks/startup.py --repeats 7 --json weights/training/bench/startup.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
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


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, capture_output=True, env=ENVIRONMENT)
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp())
    image = work / "tiny.png"
    Image.fromarray(np.random.default_rng(0).integers(0, 256, (64, 64, 3), dtype=np.uint8)).save(image)
    mixtask = shutil.which("mixtask") or str(Path(sys.executable).with_name("mixtask"))
    apply = [mixtask, "apply", str(image), "-t", "seg=1,style1=1", "-o", str(work / "out.png"), "--overwrite"]
    subprocess.run(apply, check=True, capture_output=True, env=ENVIRONMENT)  # caches the probe and the bytecode
    torch_only, whole = [], []
    for _ in range(args.repeats):  # interleaved, so that a drift in the machine's speed touches both alike
        torch_only.append(seconds([sys.executable, "-c", "import torch"]))
        whole.append(seconds(apply))
    # Each round's apply minus its own `import torch`: a drift in the machine's speed between rounds (this
    # machine's bare import wanders by 0.5 s) cancels in the pair, where a difference of medians keeps it.
    paired = [apply - bare for apply, bare in zip(whole, torch_only)]
    result = {
        "import_torch_s": round(statistics.median(torch_only), 3),
        "apply_s": round(statistics.median(whole), 3),
        "overhead_s": round(statistics.median(paired), 3),
        "overhead_quartiles_s": [round(q, 3) for q in statistics.quantiles(paired, n=4)],
        "repeats": args.repeats,
    }
    print(json.dumps(result, indent=2))
    if args.json:
        args.json.write_text(json.dumps(result, indent=2) + "\n")
    shutil.rmtree(work)


if __name__ == "__main__":
    main()
