"""Mixed tasks: which members a mix may have, and how its training samples are made.

Paper, Sec. 3.3 ("Mixed tasks"). A mix names 2 or 3 tasks of a model, e.g. `denoise+style1`.
What a mix means is derived from the *kinds* of its members (registry `KIND_ROLES`), never
from their names, so retrained models with other task names mix the same way:

- input  = the clean image with the corruption of every restoration member (inpaint holes,
  denoise scratches), in task-vector order;
- target = the clean image, passed through the stage-1 model once per style member
  ("sequential mixing"), then multiplied by the object mask if seg is a member
  ("region masking").

The mix's task vector sets every member to 1.0 (paper, Table 2). A mix of two styles is
refused: that blend is left to FiLM interpolation at inference time (`--task
style1=0.5,style2=0.5`). Reconstruction is not a task-vector entry, so it cannot be a member.

A single task is the one-member case of the same rule: `inpaint` alone is input = holes,
target = clean; `seg` alone is input = clean, target = clean x mask.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from mixtask.errors import MixtaskError
from mixtask.tasks import IDENTITY_NAMES, TaskSet

MIN_MEMBERS, MAX_MEMBERS = 2, 3


@dataclass(frozen=True)
class KindRole:
    """What a task kind contributes to a mixed sample (paper, Table 1 and Sec. 3.3)."""

    corrupts_input: bool  # restoration task: its corruption is applied to the input
    transforms_target: bool  # style: the stage-1 model re-renders the target
    masks_target: bool  # seg: the target is multiplied by the object mask
    loss: str  # the loss of the single task: "l2", "l2+adversarial" or "perceptual"


KIND_ROLES = {
    "inpaint": KindRole(corrupts_input=True, transforms_target=False, masks_target=False, loss="l2"),
    "denoise": KindRole(corrupts_input=True, transforms_target=False, masks_target=False, loss="l2"),
    "seg": KindRole(corrupts_input=False, transforms_target=False, masks_target=True, loss="l2+adversarial"),
    "style": KindRole(corrupts_input=False, transforms_target=True, masks_target=False, loss="perceptual"),
}
RESTORATION_KINDS = tuple(kind for kind, role in KIND_ROLES.items() if role.corrupts_input)  # inpaint, denoise


@dataclass(frozen=True)
class MixRule:
    """One task or mix, resolved against a TaskSet: names, kinds and the steps to build a sample."""

    names: tuple[str, ...]  # canonical task names, in task-vector order
    kinds: tuple[str, ...]
    vector: tuple[float, ...]  # every member at 1.0

    @property
    def label(self) -> str:
        return "+".join(self.names)

    @property
    def corruptions(self) -> tuple[str, ...]:
        """Kinds whose corruption goes onto the input, in task-vector order."""
        return tuple(kind for kind in self.kinds if KIND_ROLES[kind].corrupts_input)

    @property
    def styles(self) -> tuple[str, ...]:
        """Style members, whose stage-1 rendering is applied to the target in order."""
        return tuple(name for name, kind in zip(self.names, self.kinds) if KIND_ROLES[kind].transforms_target)

    @property
    def needs_mask(self) -> bool:
        return any(KIND_ROLES[kind].masks_target for kind in self.kinds)

    @property
    def is_mix(self) -> bool:
        return len(self.names) > 1


def single_rule(task_set: TaskSet, name: str) -> MixRule:
    """The rule of one single task (a one-member 'mix')."""
    task = task_set.tasks[task_set.index(name)]
    return MixRule((task.name,), (task.kind,), task_set.vector({task.name: 1.0}))


def split_mix_text(text: str) -> list[str]:
    """`denoise+style1` (or `denoise,style1`) -> ['denoise', 'style1']."""
    parts = [part.strip().lower() for part in text.replace(",", "+").split("+")]
    if not all(parts):
        raise MixtaskError(f"mix {text!r} has an empty member; write it like denoise+style1")
    return parts


def _check_members(text: str, labels: Sequence[str], task_set: TaskSet) -> None:
    identity = [label for label in labels if label in IDENTITY_NAMES]
    if identity:
        raise MixtaskError(f"mix {text!r}: {identity[0]!r} (reconstruction, all zeros) cannot be a mix member")
    if not MIN_MEMBERS <= len(labels) <= MAX_MEMBERS:
        raise MixtaskError(
            f"mix {text!r} has {len(labels)} task(s); a mix names 2 or 3 tasks (single tasks are always trained)"
        )
    for label in labels:
        task_set.index(label)  # raises with the list of valid names


def derive_mix(task_set: TaskSet, text: str) -> MixRule:
    """Parse and validate `a+b[+c]` against a TaskSet; the rule follows from the members' kinds."""
    labels = split_mix_text(text)
    _check_members(text, labels, task_set)
    indices = sorted(task_set.index(label) for label in labels)
    if len(set(indices)) != len(indices):
        raise MixtaskError(f"mix {text!r} names the same task twice")
    tasks = [task_set.tasks[i] for i in indices]
    styles = [task.name for task in tasks if KIND_ROLES[task.kind].transforms_target]
    if len(styles) > 1:
        raise MixtaskError(
            f"mix {text!r} combines two styles ({' and '.join(styles)}); style blends are not trained as mixes, "
            f"use FiLM interpolation at inference instead, e.g. --task {styles[0]}=0.5,{styles[1]}=0.5"
        )
    names = tuple(task.name for task in tasks)
    return MixRule(names, tuple(task.kind for task in tasks), task_set.vector(dict.fromkeys(names, 1.0)))


def derive_mixes(task_set: TaskSet, texts: Sequence[str]) -> tuple[MixRule, ...]:
    """Several mixes; the same mix named twice (in any order) is an error."""
    rules = tuple(derive_mix(task_set, text) for text in texts)
    labels = [rule.label for rule in rules]
    repeated = sorted({label for label in labels if labels.count(label) > 1})
    if repeated:
        raise MixtaskError(f"mix given twice: {', '.join(repeated)}")
    return rules


def corrupt_input(rule: MixRule, clean, corruptions: dict[str, Callable], generator):
    """Input of a sample: the clean batch with each restoration member's corruption applied."""
    image = clean
    for kind in rule.corruptions:
        image, _ = corruptions[kind](image, generator)
    return image


def make_stylizer(model, task_set: TaskSet, precision: Callable) -> Callable:
    """`stylize(images, style_name)`: the frozen stage-1 `model` at that style's vector (1.0).

    `precision()` returns the context (e.g. autocast) to run the model under.
    """
    import torch

    @torch.no_grad()
    def stylize(images, name: str):
        vector = torch.tensor(task_set.vector({name: 1.0}), device=images.device)
        with precision():
            return model(images, vector.expand(images.shape[0], -1)).float()

    return stylize


def render_target(rule: MixRule, clean, mask, stylize: Callable | None):
    """Target of a sample: clean -> stage-1 style per style member -> x mask if seg is a member.

    `stylize(images, style_name)` runs the frozen stage-1 model; it is only called for mixes
    with a style member (a single style task has no pixel target: it uses the perceptual loss).
    """
    target = clean
    for name in rule.styles:
        if stylize is None:
            raise MixtaskError(f"mix {rule.label}: a style member needs a stage-1 model to render its target")
        target = stylize(target, name).clamp(0.0, 1.0)
    if rule.needs_mask:
        target = target * mask
    return target
