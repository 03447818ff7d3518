"""Rich tables that describe a weights file (for `mixtask tasks` and `mixtask info`)."""

from __future__ import annotations

import json
import re

from rich.table import Table

from mixtask.weights import WeightsInfo


def tasks_table(info: WeightsInfo) -> Table:
    table = Table(title=f"Tasks of {info.path.name}")
    for column in ("task", "aliases", "description"):
        table.add_column(column)
    table.add_row("recon", "reconstruction, identity", "all strengths 0: reproduce the input")
    for task in info.task_set.tasks:
        table.add_row(task.name, ", ".join(task.aliases), task.description)
    mixes = ", ".join("+".join(mix) for mix in info.task_set.mixes) or "none"
    table.caption = f"trained mixes: {mixes}; {_how_to_combine(info.config.arch)}"
    return table


def _how_to_combine(arch: str) -> str:
    from mixtask.nets.capabilities import of_arch

    can = of_arch(arch)
    if can.mixes and can.continuous:
        return "any strengths in [0, 1] can be combined, e.g. --task seg=1,style1=0.5"
    one = "one task at a time" if not can.mixes else "tasks can be combined"
    strengths = "strengths 0 or 1" if not can.continuous else "strengths in [0, 1]"
    return f"{one}, {strengths} (the {arch} architecture), e.g. --task seg=1"


def _key_value_table(title: str, data: dict) -> Table:
    table = Table(title=title, show_header=False)
    table.add_column("key", style="bold")
    table.add_column("value", overflow="fold")
    for key, value in data.items():
        if key == "sessions" and isinstance(value, list):
            value = "\n".join(_session_line(session, value[i - 1] if i else {}) for i, session in enumerate(value))
        table.add_row(str(key), _readable(value))
    return table


HASH = re.compile(r"\b[0-9a-f]{40,64}\b")


def _readable(value, indent: str = "") -> str:
    """A metadata value as lines a person reads at 80 columns: nested objects as `key: value` lines, long hex
    digests cut to 12 characters (the file keeps them whole), lists one item a line."""
    if isinstance(value, str):
        return HASH.sub(lambda match: match.group(0)[:12] + "...", value)
    if isinstance(value, dict):
        lines = []
        for key, item in value.items():
            text = _readable(item, indent + "  ")
            lines.append(
                f"{indent}{key}:\n{text}" if "\n" in text or isinstance(item, dict) else f"{indent}{key}: {text}"
            )
        return "\n".join(lines)
    if isinstance(value, list):
        return "\n".join(_readable(item, indent) for item in value)
    return json.dumps(value)


def _session_line(session: dict, previous: dict) -> str:
    """`resume at step 4451 (128 px, lr 0.001): 1 x CPU (2 threads): mixtask train --resume runs/base2`; the
    hardware and the job weights only where they differ from the session before (short lines at 80 columns)."""
    command = session.get("command", "command not logged")
    settings = [f"{session['size']} px"] if "size" in session else []
    settings += [f"lr {session['lr']:g}"] if "lr" in session else []
    if "job_weights" in session and session["job_weights"] != previous.get("job_weights"):
        settings += [f"jobs {session['job_weights']}"]
    settings += [f"composites {session['composites']}"] if "composites" in session else []
    where = f"{session.get('event', '?')} at step {session.get('step', '?')}"
    where += f" ({', '.join(settings)})" if settings else ""
    hardware = session.get("hardware", "?")
    return f"{where}: {hardware}: {command}" if hardware != previous.get("hardware") else f"{where}: {command}"


def architecture_text(info: WeightsInfo, model) -> str:
    """`single (mixes: no, strengths 0..1: no, task maps: no)`: the architecture and what it can do."""
    from mixtask.nets.capabilities import of_class

    can = of_class(info.config.arch, type(model))
    flags = {"mixes": can.mixes, "strengths 0..1": can.continuous, "task maps": can.task_maps}
    said = ", ".join(f"{name}: {'yes' if value else 'no'}" for name, value in flags.items())
    return f"{can.arch} ({said})"


def info_tables(info: WeightsInfo, model) -> list[Table]:
    from mixtask.nets.film import count_parameters

    summary = {
        "file": str(info.path),
        "architecture": architecture_text(info, model),
        "parameters": f"{count_parameters(model):,}",
        **info.config.to_json(),
    }
    return [
        _key_value_table("Model", summary),
        tasks_table(info),
        _key_value_table("Provenance", info.provenance or {"": "not recorded"}),
        *_metrics_tables(info.metrics),
    ]


def _metrics_tables(metrics: dict) -> list:
    """An eval result (`mixtask eval --record`) as the tables `mixtask eval` prints; anything else as keys."""
    if not metrics:
        return [_key_value_table("Metrics", {"": "not measured"})]
    if "groups" not in metrics:
        return [_key_value_table("Metrics", metrics)]
    from mixtask.evaluation.report import result_tables

    return result_tables(metrics)
