"""The arms' image L2 over the control's on the same batches (the keep term taken out), in two halves of the
120 steps. Usage (repository root, the arms' runs in runs/): python weights/training/probes/keepfill/paired.py"""

import json

import numpy as np

START = 601
ARMS = {"keep02": 0.02, "keep02i": 0.02, "keep05i": 0.05}  # name: --keep-weight


def image_losses(name: str, weight: float) -> dict[int, tuple[str, float]]:
    out = {}
    with open(f"runs/{name}/log.jsonl") as log:
        rows = [json.loads(line) for line in log]
    for row in rows:
        if "job" not in row or row["step"] <= START or row["job"] not in row["losses"]:
            continue
        losses, job = row["losses"], row["job"]
        out[row["step"]] = (job, losses[job] - weight * losses.get(f"{job}.keep", 0.0))
    return out


control = image_losses("keep0", 0)
for name, weight in ARMS.items():
    arm = image_losses(name, weight)
    for job in ("inpaint", "denoise"):
        for low, high in ((START + 1, START + 60), (START + 61, START + 120)):
            steps = [s for s in arm if s in control and control[s][0] == job and low <= s <= high]
            ratios = [arm[s][1] / control[s][1] for s in steps]
            error = np.std(ratios) / np.sqrt(len(ratios))
            print(f"{name} {job} steps {low}-{high}: ratio {np.mean(ratios):.3f} ± {error:.3f} (n {len(ratios)})")
