"""The task-vector language: names, aliases, strengths and every error it can give."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mixtask.errors import MixtaskError
from mixtask.tasks import DEFAULT_TASK_SET, Task, TaskSet

TASKS = DEFAULT_TASK_SET


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("denoise=1,style1=0.6", (0, 1, 0, 0.6, 0)),
        ("seg=1,style1=1", (0, 0, 1, 1, 0)),
        ("seg+style1", (0, 0, 1, 1, 0)),
        ("recon", (0, 0, 0, 0, 0)),
        ("identity", (0, 0, 0, 0, 0)),
        (" Denoising = 0.25 ", (0, 0.25, 0, 0, 0)),
        ("starry=0,autumn=1e-1", (0, 0, 0, 0, 0.1)),
    ],
)
def test_parses_names_aliases_and_strengths(text, expected):
    assert TASKS.parse(text) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("text", "message", "lists_names"),
    [
        ("", "empty task", True),
        ("  ", "empty task", True),
        ("blur=1", "unknown task 'blur'", True),
        ("seg=abc", "'abc' is not a number (use e.g. seg=0.5)", False),
        ("seg=1.5", "strength '1.5' is outside [0, 1]", False),
        ("seg=-0.1", "strength '-0.1' is outside [0, 1]", False),
        ("seg=nan", "strength 'nan' is outside [0, 1]", False),
        ("seg=1,segmentation=0.5", "task 'seg' given twice", False),
        ("seg,,style1", "empty item", True),
        ("recon,seg", "give it alone", False),
    ],
)
def test_errors_say_what_is_wrong_and_list_valid_names_where_a_name_is_wrong(text, message, lists_names):
    with pytest.raises(MixtaskError) as caught:
        TASKS.parse(text)
    assert message in str(caught.value)
    assert ("valid tasks: recon, inpaint" in str(caught.value)) == lists_names


@given(st.text(max_size=40))
def test_arbitrary_text_parses_or_raises_project_error(text):
    try:
        vector = TASKS.parse(text)
    except MixtaskError:
        return
    assert len(vector) == len(TASKS) and all(0.0 <= v <= 1.0 for v in vector)


@given(st.lists(st.floats(0, 1), min_size=5, max_size=5))
def test_describe_round_trips(values):
    vector = tuple(values)
    assert TASKS.parse(TASKS.describe(vector)) == pytest.approx(vector, abs=1e-4 + 1e-3 * max(vector))


def test_slug_is_file_name_safe():
    assert TASKS.slug(TASKS.parse("seg=1,style1=1")) == "seg+style1"
    assert TASKS.slug(TASKS.parse("denoise,style1=0.6")) == "denoise+style1_0.6"
    assert TASKS.slug((0,) * 5) == "recon"


def test_json_round_trip_and_bad_registries():
    assert TaskSet.from_json(TASKS.to_json()) == TASKS
    with pytest.raises(MixtaskError, match="used twice"):
        TaskSet((Task("a", "seg"), Task("b", "seg", ("a",))))
    with pytest.raises(MixtaskError, match="unknown kind"):
        Task("a", "blur")
    with pytest.raises(MixtaskError, match="not allowed"):
        Task("recon", "seg")


@pytest.mark.parametrize(("text", "message"), [("seg=١", "is not a number"), ("seg=0_5", "is not a number"),
                                               ("recon=0", "takes no strength")])  # fmt: skip
def test_strengths_are_plain_ascii_numbers_and_recon_takes_none(text, message):
    with pytest.raises(MixtaskError, match=message):
        TASKS.parse(text)
    assert TASKS.parse("seg=.5,style1=1e-1") == TASKS.vector({"seg": 0.5, "style1": 0.1})


def test_a_folder_given_as_weights_is_named_a_folder(tmp_path):
    from mixtask.weights import read_info

    with pytest.raises(MixtaskError, match="is a folder"):
        read_info(tmp_path)
