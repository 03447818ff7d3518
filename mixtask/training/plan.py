"""The plan of a run: its tasks, mixes and stages, and the jobs a mini-batch can train (Sec. 3.3)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from mixtask.errors import MixtaskError
from mixtask.mixing import MixRule, derive_mixes, single_rule
from mixtask.tasks import DEFAULT_MIXES, DEFAULT_TASKS, Task, TaskSet
from mixtask.training.options import StyleSpec, TrainOptions, parse_job_weights, stage1_steps, trains_base_first

RESTORATION_TASKS = tuple(task for task in DEFAULT_TASKS if task.kind != "style")


def style_task(spec: StyleSpec) -> Task:
    """A style task; a name of the default set keeps its aliases and description."""
    for task in DEFAULT_TASKS:
        if task.kind == "style" and task.name == spec.name:
            return Task(spec.name, "style", task.aliases, f"{task.description} (image {Path(spec.image).name})")
    return Task(spec.name, "style", (), f"style of {Path(spec.image).name}")


def build_task_set(styles: tuple[StyleSpec, ...]) -> TaskSet:
    """inpaint, denoise, seg, then the named styles, in that task-vector order."""
    return TaskSet(RESTORATION_TASKS + tuple(style_task(spec) for spec in styles))


def default_mix_texts(task_set: TaskSet) -> tuple[str, ...]:
    """The paper's three mixes, keeping those whose tasks this run has."""
    return tuple("+".join(mix) for mix in DEFAULT_MIXES if all(name in task_set.names for name in mix))


@dataclass(frozen=True)
class Job:
    """What one mini-batch trains: recon, a single task or a mix, and where its target comes from.

    source: "recon" (L2 to clean), "members" (each member's own loss; singles and Method 2),
    "synthesized" (L2 to the stage-1 rendering; Method 3) or "folder" (L2 to pairs from --synth).
    """

    name: str
    rule: MixRule | None
    source: str
    vector: tuple[float, ...]


@dataclass(frozen=True)
class Plan:
    """The tasks, mixes and stages of a run."""

    task_set: TaskSet
    singles: tuple[MixRule, ...]
    mixes: tuple[MixRule, ...]
    folder_mixes: tuple[MixRule, ...]
    method: int
    steps: int
    stage1_steps: int
    base_then_tasks: bool = False  # the architecture trains its base first (Piggyback; see `jobs`)
    job_weights: tuple[tuple[str, float], ...] = ()  # --job-weights; a job not named has weight 1

    def stage_at(self, step: int) -> int:
        two_stages = self.method == 3 or self.base_then_tasks
        return 2 if two_stages and step >= self.stage1_steps else 1

    def jobs(self, stage: int) -> tuple[Job, ...]:
        """The jobs of a stage. An architecture with `base_then_tasks` (Piggyback) trains its shared
        base on recon alone in stage 1 and its per-task parts on the single tasks in stage 2."""
        recon = Job("recon", None, "recon", (0.0,) * len(self.task_set))
        jobs = [recon, *(Job(rule.label, rule, "members", rule.vector) for rule in self.singles)]
        if self.base_then_tasks:
            return tuple(jobs[:1] if stage == 1 else jobs[1:])
        if self.method == 2:
            jobs += [Job(rule.label, rule, "members", rule.vector) for rule in self.mixes]
        if self.method == 3 and stage == 2:
            jobs += [Job(rule.label, rule, "synthesized", rule.vector) for rule in self.mixes]
            jobs += [Job(f"{rule.label}@synth", rule, "folder", rule.vector) for rule in self.folder_mixes]
        return tuple(jobs)

    def draw_weights(self, jobs: tuple[Job, ...]) -> list[float] | None:
        """How often each of `jobs` is drawn, relative; None: uniformly (the paper)."""
        if not self.job_weights:
            return None
        weights = dict(self.job_weights)
        return [weights.get(job.name, 1.0) for job in jobs]

    def trained_mixes(self, steps_done: int) -> tuple[tuple[str, ...], ...]:
        """Mixes trained in the first `steps_done` steps (for the weights' metadata)."""
        if self.method == 1 or (self.method == 3 and steps_done <= self.stage1_steps):
            return ()
        labels = dict.fromkeys(rule.names for rule in (*self.mixes, *self.folder_mixes))
        return tuple(labels)


def build_plan(options: TrainOptions, folder_labels: tuple[str, ...] = (), start_step: int | None = 0) -> Plan:
    """The run's plan, its --job-weights checked for the stages from `start_step` on (None: not yet known, a run
    about to be restored; `checkpointing.restore` checks them)."""
    task_set = build_task_set(options.styles)
    texts = options.mixes if options.mixes is not None else default_mix_texts(task_set)
    mixes = derive_mixes(task_set, texts) if options.mix_method != 1 else ()
    if options.mix_method == 1 and options.mixes:
        raise MixtaskError("--mix-method 1 trains single tasks only: drop --mix, or use method 2 or 3")
    singles = tuple(single_rule(task_set, name) for name in task_set.names)
    try:
        folder = derive_mixes(task_set, folder_labels)
    except MixtaskError as error:
        raise MixtaskError(f"--synth {options.synth}: {error}") from None
    plan = Plan(
        task_set, singles, mixes, folder, options.mix_method, options.steps, stage1_steps(options),
        trains_base_first(options.arch), parse_job_weights(options.job_weights),
    )  # fmt: skip
    check_job_names(plan)
    if start_step is not None:
        check_stage_weights(plan, start_step)
    return plan


def check_job_names(plan: Plan) -> None:
    """--job-weights names jobs of this run."""
    names = {job.name for stage in (1, 2) for job in plan.jobs(stage)}
    for name, _ in plan.job_weights:
        if name not in names:
            raise MixtaskError(f"--job-weights: this run has no job {name!r} (its jobs: {', '.join(sorted(names))})")


def check_stage_weights(plan: Plan, start_step: int) -> None:
    """--job-weights leaves each stage still ahead of `start_step` something to draw (a resumed run past stage 1,
    e.g. a probe's branch that trains one mix, may give every stage-1 job weight 0)."""
    last = max(start_step, plan.steps - 1)
    for stage in sorted({plan.stage_at(start_step), plan.stage_at(last)}):
        if sum(plan.draw_weights(plan.jobs(stage)) or [1.0]) <= 0:
            raise MixtaskError(f"--job-weights: every job of stage {stage} has weight 0")
