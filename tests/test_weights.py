"""Weights files: round trip, and one clear error naming the file for each kind of damage."""

import json

import pytest
import torch
from safetensors.torch import save_file

from mixtask.errors import MixtaskError
from mixtask.nets.film import ModelConfig
from mixtask.tasks import DEFAULT_TASK_SET
from mixtask.weights import load_weights, read_info, save_weights
from tests.conftest import TINY_CONFIG, make_tiny_model


def test_round_trip(tmp_path):
    model = make_tiny_model()
    path = save_weights(tmp_path / "m.safetensors", model, DEFAULT_TASK_SET, {"steps": 3}, {"recon_psnr": 40.0})
    loaded, info = load_weights(path)
    assert info.config == TINY_CONFIG and info.task_set == DEFAULT_TASK_SET
    assert info.provenance == {"steps": 3} and info.metrics == {"recon_psnr": 40.0}
    for key, value in model.state_dict().items():
        assert torch.equal(loaded.state_dict()[key], value)
    assert read_info(path).task_set.mixes == DEFAULT_TASK_SET.mixes
    assert not list(tmp_path.glob("*.part")), "no temp file left behind"


def _metadata(**overrides):
    metadata = {
        "mixtask.format": "1",
        "mixtask.config": json.dumps(TINY_CONFIG.to_json()),
        "mixtask.tasks": json.dumps(DEFAULT_TASK_SET.to_json()),
    }
    metadata.update(overrides)
    return metadata


def test_missing_file(tmp_path):
    with pytest.raises(MixtaskError, match=r"nope\.safetensors not found"):
        load_weights(tmp_path / "nope.safetensors")


def test_truncated_file(tiny_weights):
    data = tiny_weights.read_bytes()
    tiny_weights.write_bytes(data[: len(data) // 2])
    with pytest.raises(MixtaskError, match=r"tiny\.safetensors.*(not a valid|damaged)"):
        load_weights(tiny_weights)


def test_random_bytes(tmp_path):
    path = tmp_path / "noise.safetensors"
    path.write_bytes(torch.randint(0, 256, (4096,), dtype=torch.uint8).numpy().tobytes())
    with pytest.raises(MixtaskError, match=r"noise\.safetensors is not a valid safetensors"):
        load_weights(path)


def test_unknown_format_version(tmp_path):
    path = tmp_path / "future.safetensors"
    save_file(make_tiny_model().state_dict(), str(path), metadata=_metadata(**{"mixtask.format": "99"}))
    with pytest.raises(MixtaskError, match=r"future\.safetensors has weights format version '99'"):
        load_weights(path)


def test_not_mixtask_weights(tmp_path):
    path = tmp_path / "other.safetensors"
    save_file({"w": torch.zeros(2)}, str(path))
    with pytest.raises(MixtaskError, match="not mixtask weights"):
        load_weights(path)


def test_tensors_not_matching_config(tmp_path):
    path = tmp_path / "wide.safetensors"
    wider = json.dumps(ModelConfig(num_tasks=5, width=8, res_blocks=1).to_json())
    save_file(make_tiny_model().state_dict(), str(path), metadata=_metadata(**{"mixtask.config": wider}))
    with pytest.raises(MixtaskError, match=r"wide\.safetensors: tensors do not match its config"):
        load_weights(path)


def test_broken_metadata(tmp_path):
    path = tmp_path / "broken.safetensors"
    save_file(make_tiny_model().state_dict(), str(path), metadata=_metadata(**{"mixtask.config": "{not json"}))
    with pytest.raises(MixtaskError, match=r"broken\.safetensors has broken mixtask metadata"):
        load_weights(path)


def test_task_count_mismatch(tmp_path):
    path = tmp_path / "count.safetensors"
    six = json.dumps(ModelConfig(num_tasks=6, width=4, res_blocks=1).to_json())
    save_file(make_tiny_model().state_dict(), str(path), metadata=_metadata(**{"mixtask.config": six}))
    with pytest.raises(MixtaskError, match="6 task inputs but 5 task names"):
        load_weights(path)


def test_pickle_file_is_refused(tmp_path):
    path = tmp_path / "model.pt"
    torch.save(make_tiny_model().state_dict(), path)
    with pytest.raises(MixtaskError, match="not a valid safetensors"):
        load_weights(path)


def test_record_metrics_keeps_tensors_and_other_metadata(tiny_weights):
    from mixtask.weights import record_metrics

    before, info = load_weights(tiny_weights)
    record_metrics(tiny_weights, {"recon": {"psnr": 33.1}})
    after, updated = load_weights(tiny_weights)
    assert updated.metrics == {"recon": {"psnr": 33.1}} and updated.provenance == info.provenance
    for key, value in before.state_dict().items():
        assert torch.equal(after.state_dict()[key], value)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"width": -32}, "'width' is -32"),
        ({"width": 200000}, "'width' is 200000"),
        ({"width": "abc"}, "'width' is 'abc'"),
        ({"res_blocks": 10**9}, "'res_blocks'"),
        ({"width": True}, "'width' is True"),
        ({"arch": "nope"}, "'arch' is 'nope'"),
        ({"head": "nope"}, "'head' is 'nope'"),
    ],
)
def test_crafted_configs_are_refused_before_anything_is_built(tmp_path, change, message):
    path = tmp_path / "crafted.safetensors"
    config = json.dumps(TINY_CONFIG.to_json() | change)
    save_file(make_tiny_model().state_dict(), str(path), metadata=_metadata(**{"mixtask.config": config}))
    for read in (read_info, load_weights):
        with pytest.raises(
            MixtaskError, match=rf"crafted\.safetensors has broken mixtask metadata: config field {message}"
        ):
            read(path)


@pytest.mark.parametrize("key", ["mixtask.provenance", "mixtask.metrics"])
def test_provenance_and_metrics_must_be_objects(tmp_path, key):
    path = tmp_path / "list.safetensors"
    save_file(make_tiny_model().state_dict(), str(path), metadata=_metadata(**{key: "[1, 2]"}))
    with pytest.raises(MixtaskError, match=f"{key} is not a JSON object"):
        read_info(path)


def test_non_finite_tensors_are_refused(tmp_path):
    path = tmp_path / "nan.safetensors"
    state = make_tiny_model().state_dict()
    name = next(iter(state))
    state[name] = torch.full_like(state[name], float("nan"))
    save_file(state, str(path), metadata=_metadata())
    with pytest.raises(MixtaskError, match=rf"nan\.safetensors: tensor '{name}' holds NaN or Inf values"):
        load_weights(path)
    from typer.testing import CliRunner

    from mixtask.cli import app

    result = CliRunner().invoke(app, ["tasks", "-w", str(path)])  # `tasks` checks the tensors too
    assert result.exit_code == 1 and "holds NaN or Inf values" in result.output


@pytest.mark.parametrize("value", [float("inf"), float("-inf"), float("nan")])
def test_one_non_finite_value_in_a_later_tensor_is_named(tmp_path, value):
    path = tmp_path / "one.safetensors"
    state = make_tiny_model().state_dict()
    name = list(state)[-1]
    state[name] = state[name].clone()
    state[name].view(-1)[-1] = value
    save_file(state, str(path), metadata=_metadata())
    with pytest.raises(MixtaskError, match=rf"tensor '{name}' holds NaN or Inf values"):
        load_weights(path)


def test_initialisation_is_skipped_only_in_the_loading_thread(monkeypatch):
    import threading

    from torch import nn

    from mixtask.weights import _skipping_initialisation

    calls = []
    monkeypatch.setattr(nn.init, "kaiming_uniform_", lambda tensor, **kwargs: calls.append(threading.get_ident()))
    with _skipping_initialisation():
        nn.Linear(2, 2)
        other = threading.Thread(target=nn.Linear, args=(2, 2))
        other.start()
        other.join()
    nn.Linear(2, 2)
    assert calls == [other.ident, threading.get_ident()]
