"""Mix rules (paper, Sec. 3.3): derived from task kinds; two styles refused; sample construction."""

from __future__ import annotations

import pytest
import torch

from mixtask.errors import MixtaskError
from mixtask.mixing import corrupt_input, derive_mix, derive_mixes, make_stylizer, render_target, single_rule
from mixtask.tasks import DEFAULT_TASK_SET, Task, TaskSet


def test_rule_follows_member_kinds():
    rule = derive_mix(DEFAULT_TASK_SET, "style1+denoise")
    assert rule.names == ("denoise", "style1")  # task-vector order, whatever order was written
    assert rule.label == "denoise+style1"
    assert rule.corruptions == ("denoise",)
    assert rule.styles == ("style1",)
    assert not rule.needs_mask
    assert rule.vector == (0.0, 1.0, 0.0, 1.0, 0.0)


def test_triple_and_aliases():
    rule = derive_mix(DEFAULT_TASK_SET, "scratches+holes+segment")
    assert rule.names == ("inpaint", "denoise", "seg")
    assert rule.corruptions == ("inpaint", "denoise")
    assert rule.styles == ()
    assert rule.needs_mask
    assert rule.vector == (1.0, 1.0, 1.0, 0.0, 0.0)


def test_rules_come_from_kinds_not_names():
    tasks = TaskSet((Task("fill", "inpaint"), Task("cutout2", "seg"), Task("vangogh", "style"), Task("monet", "style")))
    rule = derive_mix(tasks, "vangogh+cutout2+fill")
    assert rule.corruptions == ("inpaint",)
    assert rule.styles == ("vangogh",)
    assert rule.needs_mask


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("style1+style2", "FiLM interpolation"),
        ("recon+denoise", "cannot be a mix member"),
        ("denoise", "a mix names 2 or 3 tasks"),
        ("inpaint+denoise+seg+style1", "a mix names 2 or 3 tasks"),
        ("denoise+scratches", "same task twice"),
        ("denoise+sharpen", "unknown task 'sharpen'; valid tasks: recon, inpaint"),
        ("denoise+", "empty member"),
    ],
)
def test_bad_mixes_are_refused_with_a_reason(text, message):
    with pytest.raises(MixtaskError, match=message):
        derive_mix(DEFAULT_TASK_SET, text)


def test_two_styles_message_suggests_interpolation():
    with pytest.raises(MixtaskError, match=r"--task style1=0.5,style2=0.5"):
        derive_mix(DEFAULT_TASK_SET, "style2+style1")


def test_same_mix_twice_is_refused():
    with pytest.raises(MixtaskError, match="mix given twice: denoise\\+seg"):
        derive_mixes(DEFAULT_TASK_SET, ["denoise+seg", "seg+denoise"])


def test_single_rule():
    rule = single_rule(DEFAULT_TASK_SET, "cutout")
    assert (rule.names, rule.needs_mask, rule.is_mix) == (("seg",), True, False)


def _marking_corruptions(calls):
    def make(kind, value):
        def corrupt(x, generator):
            calls.append(kind)
            return x + value, torch.ones_like(x[:, :1])

        return corrupt

    return {"inpaint": make("inpaint", 1.0), "denoise": make("denoise", 10.0)}


def test_input_gets_each_restoration_corruption_in_order():
    calls = []
    clean = torch.zeros(2, 3, 8, 8)
    rule = derive_mix(DEFAULT_TASK_SET, "denoise+inpaint+style1")
    out = corrupt_input(rule, clean, _marking_corruptions(calls), torch.Generator())
    assert calls == ["inpaint", "denoise"]
    assert torch.all(out == 11.0)
    assert corrupt_input(derive_mix(DEFAULT_TASK_SET, "seg+style1"), clean, {}, None) is clean


def test_target_is_styled_then_masked():
    clean = torch.full((1, 3, 4, 4), 0.5)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., :2, :] = 1
    seen = []

    def stylize(images, name):
        seen.append(name)
        return images * 0 + 0.9

    target = render_target(derive_mix(DEFAULT_TASK_SET, "seg+style1"), clean, mask, stylize)
    assert seen == ["style1"]
    assert torch.allclose(target[..., :2, :], torch.tensor(0.9)) and torch.all(target[..., 2:, :] == 0)
    restored = render_target(derive_mix(DEFAULT_TASK_SET, "denoise+inpaint"), clean, None, None)
    assert restored is clean


def test_style_mix_without_a_stage1_model_is_an_error():
    with pytest.raises(MixtaskError, match="stage-1 model"):
        render_target(derive_mix(DEFAULT_TASK_SET, "denoise+style1"), torch.zeros(1, 3, 4, 4), None, None)


def test_stylizer_feeds_the_style_vector():
    vectors = []

    def model(images, c):
        vectors.append(c)
        return images

    import contextlib

    stylize = make_stylizer(model, DEFAULT_TASK_SET, contextlib.nullcontext)
    stylize(torch.zeros(2, 3, 4, 4), "style2")
    assert vectors[0].tolist() == [[0, 0, 0, 0, 1.0]] * 2
