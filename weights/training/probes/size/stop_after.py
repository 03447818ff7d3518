"""Send SIGINT (a clean checkpoint) to a training run once its log's step seconds after `start` sum to `budget`.

python stop_after.py LOG START_STEP BUDGET_S PGREP_PATTERN
"""

import json
import subprocess
import sys
import time
from pathlib import Path

log, start, budget, pattern = Path(sys.argv[1]), int(sys.argv[2]), float(sys.argv[3]), sys.argv[4]
while True:
    records = [json.loads(line) for line in log.read_text().splitlines()]
    total = sum(r["seconds"] for r in records if r.get("step", 0) > start and "seconds" in r)
    if total >= budget:
        subprocess.run(["pkill", "-INT", "-f", pattern], check=False)
        print(f"stopped after {total:.0f} s of training", flush=True)
        break
    time.sleep(5)
