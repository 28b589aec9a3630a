"""pyro_ar.save / pyro_ar.load: exact round trips and clear errors on bad files."""

import numpy as np
import pytest
import torch

import pyro_ar
from pyro_ar.checkpoint import FORMAT, VERSION, load_checkpoint
from pyro_ar.conditionals import Bernoulli, Categorical, MixtureOfGaussians

HEADS = {"bernoulli": Bernoulli(), "categorical": Categorical(3), "mog": MixtureOfGaussians(2, min_scale=0.01)}


def _model(kind: str, head):
    if kind == "fvsbn":
        return pyro_ar.FVSBN(event_size=5, conditional=head, order="reverse")
    if kind == "nade":
        return pyro_ar.NADE(event_size=5, hidden_size=4, conditional=head, order=[2, 0, 4, 1, 3])
    return pyro_ar.MADE(event_size=5, hidden_sizes=[8, 6], conditional=head, num_masks=3, order="random", seed=7)


def _values(head, n=5, rows=11):
    gen = torch.Generator().manual_seed(1)
    if isinstance(head, Bernoulli):
        return torch.randint(0, 2, (rows, n), generator=gen).double()
    if isinstance(head, Categorical):
        return torch.randint(0, head.num_categories, (rows, n), generator=gen)
    return torch.randn(rows, n, generator=gen, dtype=torch.float64)


def _perturb(net):
    # Move every parameter off its initial value, so a load that silently re-initializes fails.
    torch.manual_seed(3)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.1 * torch.randn_like(p))


@pytest.mark.parametrize("head_name", sorted(HEADS))
@pytest.mark.parametrize("kind", ["fvsbn", "nade", "made"])
def test_round_trip_is_exact(tmp_path, kind, head_name):
    net = _model(kind, HEADS[head_name]).double()
    _perturb(net)
    path = tmp_path / "m.pt"
    pyro_ar.save(net, path)
    loaded = pyro_ar.load(path).double()
    assert type(loaded) is type(net)
    assert loaded.conditional == net.conditional
    assert torch.equal(loaded.conditioner.orders, net.conditioner.orders)
    state, loaded_state = net.state_dict(), loaded.state_dict()
    assert state.keys() == loaded_state.keys()
    for key in state:
        assert torch.equal(state[key], loaded_state[key]), key
    x = _values(net.conditional)
    assert torch.equal(net().log_prob(x), loaded().log_prob(x))


def test_conditional_model_and_metadata_round_trip(tmp_path):
    net = pyro_ar.MADE(event_size=4, hidden_sizes=[8], context_size=3, conditional=Categorical(4))
    _perturb(net)
    extra = {
        "metrics": {"test_nll": 1.5, "history": [3.0, 2.0]},
        "stats": torch.arange(4.0),
        "np_array": np.array([1.0, 2.0]),
        "np_scalar": np.float64(0.25),
        "image_shape": (2, 2),
        "note": None,
    }
    pyro_ar.save(net, tmp_path / "c.pt", **extra)
    ckpt = load_checkpoint(tmp_path / "c.pt")
    assert ckpt.model.context_size == 3
    assert ckpt.extra["metrics"] == {"test_nll": 1.5, "history": [3.0, 2.0]}
    assert torch.equal(ckpt.extra["stats"], torch.arange(4.0))
    assert torch.equal(ckpt.extra["np_array"], torch.tensor([1.0, 2.0], dtype=torch.float64))
    assert ckpt.extra["np_scalar"] == 0.25 and ckpt.extra["image_shape"] == [2, 2] and ckpt.extra["note"] is None
    context, x = torch.randn(6, 3), torch.randint(0, 4, (6, 4))
    assert torch.equal(net(context).log_prob(x), ckpt.model(context).log_prob(x))


def test_checkpoint_is_plain_for_weights_only_loading(tmp_path):
    net = pyro_ar.NADE(event_size=3, hidden_size=2, conditional=MixtureOfGaussians(2))
    pyro_ar.save(net, tmp_path / "n.pt", info={"a": 1})
    payload = torch.load(tmp_path / "n.pt", weights_only=True)
    assert payload["format"] == FORMAT and payload["version"] == VERSION == 2 and payload["model"] == "nade"
    assert payload["config"]["conditional"] == {"name": "mog", "num_components": 2, "min_scale": 1e-2}
    assert payload["config"]["hidden_size"] == 2 and payload["extra"] == {"info": {"a": 1}}


def test_version_1_checkpoints_still_load(tmp_path):
    """Version 1 stored the factory class name, ``hparams`` and heads as ``{"type": ...}``."""
    net = pyro_ar.MADE(event_size=3, hidden_sizes=[5], conditional=Categorical(3), num_masks=2)
    config = dict(net.config())
    config["conditional"] = {"type": "Categorical", "num_categories": 3}
    payload = {"format": FORMAT, "version": 1, "model": "MADE", "hparams": config,
               "state_dict": net.state_dict(), "extra": {"a": 1}}
    torch.save(payload, tmp_path / "v1.pt")
    ckpt = load_checkpoint(tmp_path / "v1.pt")
    assert type(ckpt.model) is pyro_ar.MADE and ckpt.model.conditional == Categorical(3) and ckpt.extra == {"a": 1}
    x = torch.randint(0, 3, (5, 3))
    assert torch.equal(ckpt.model().log_prob(x), net().log_prob(x))


def test_tensor_order_is_stored_as_a_list(tmp_path):
    net = pyro_ar.FVSBN(event_size=3, order=torch.tensor([2, 0, 1]))
    pyro_ar.save(net, tmp_path / "f.pt")
    assert torch.load(tmp_path / "f.pt", weights_only=True)["config"]["order"] == [2, 0, 1]
    assert pyro_ar.load(tmp_path / "f.pt").conditioner.orders.tolist() == [[2, 0, 1]]


def test_save_refuses_what_it_cannot_store(tmp_path):
    net = pyro_ar.FVSBN(event_size=3)
    with pytest.raises(TypeError, match="only None, bool, int, float, str"):
        pyro_ar.save(net, tmp_path / "x.pt", bad=object())
    with pytest.raises(TypeError, match="keys must be strings"):
        pyro_ar.save(net, tmp_path / "x.pt", bad={1: 2})
    with pytest.raises(TypeError, match="only models made by a registered factory"):
        pyro_ar.save(torch.nn.Linear(2, 2), tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


# ---- errors on load -----------------------------------------------------------------------------


@pytest.fixture
def good(tmp_path):
    path = tmp_path / "good.pt"
    pyro_ar.save(pyro_ar.MADE(event_size=4, hidden_sizes=[6]), path)
    return path


def _rewrite(path, **changes):
    payload = torch.load(path, weights_only=True)
    for key, value in changes.items():
        if value is None:
            del payload[key]
        else:
            payload[key] = value
    torch.save(payload, path)
    return path


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        pyro_ar.load(tmp_path / "nope.pt")
    with pytest.raises(ValueError, match="is not a file"):
        pyro_ar.load(tmp_path)


def test_truncated_and_garbage_files(tmp_path, good):
    blob = good.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="corrupt or truncated"):
        pyro_ar.load(tmp_path / "trunc.pt")
    (tmp_path / "junk.pt").write_bytes(b"this is not a checkpoint at all")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        pyro_ar.load(tmp_path / "junk.pt")
    (tmp_path / "empty.pt").write_bytes(b"")
    with pytest.raises(ValueError, match="corrupt or truncated"):
        pyro_ar.load(tmp_path / "empty.pt")


def test_other_torch_files_are_refused(tmp_path):
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(ValueError, match="not a pyro_ar checkpoint"):
        pyro_ar.load(tmp_path / "other.pt")
    torch.save([1, 2], tmp_path / "list.pt")
    with pytest.raises(ValueError, match="not a pyro_ar checkpoint"):
        pyro_ar.load(tmp_path / "list.pt")


def test_unknown_model_missing_keys_and_versions(good):
    path = _rewrite(good, model="WaveNet")
    with pytest.raises(ValueError, match="unknown model 'WaveNet'"):
        pyro_ar.load(path)
    path = _rewrite(good, model="MADE", state_dict=None)
    with pytest.raises(ValueError, match=r"missing the keys \['state_dict'\]"):
        pyro_ar.load(path)


def test_future_version_is_refused(good):
    with pytest.raises(ValueError, match="format version 99"):
        pyro_ar.load(_rewrite(good, version=99))


def test_parameter_shape_mismatch(good):
    payload = torch.load(good, weights_only=True)
    payload["state_dict"]["conditioner.hidden_layers.0.weight"] = torch.zeros(7, 64)
    torch.save(payload, good)
    with pytest.raises(ValueError, match=r"'conditioner.hidden_layers.0.weight' has shape \(7, 64\).*needs \(6, 4\)"):
        pyro_ar.load(good)


def test_missing_and_unexpected_parameters(good):
    payload = torch.load(good, weights_only=True)
    payload["state_dict"]["extra.weight"] = payload["state_dict"].pop("conditioner.output_layer.weight")
    torch.save(payload, good)
    message = r"missing \['conditioner.output_layer.weight'\], unexpected \['extra.weight'\]"
    with pytest.raises(ValueError, match=message):
        pyro_ar.load(good)


def test_non_finite_parameters(good):
    payload = torch.load(good, weights_only=True)
    payload["state_dict"]["conditioner.output_bias"][0] = float("nan")
    torch.save(payload, good)
    with pytest.raises(ValueError, match="'conditioner.output_bias' contains NaN"):
        pyro_ar.load(good)


def test_bad_config_and_heads(good):
    payload = torch.load(good, weights_only=True)
    config = dict(payload["config"], event_size=0)
    with pytest.raises(ValueError, match="invalid config for made: event_size must be >= 1"):
        pyro_ar.load(_rewrite(good, config=config))
    config = dict(payload["config"], conditional={"name": "poisson"})
    with pytest.raises(ValueError, match="unknown conditional 'poisson'"):
        pyro_ar.load(_rewrite(good, config=config))
    config = dict(payload["config"], conditional={"name": "categorical", "num_categories": 1})
    with pytest.raises(ValueError, match="invalid config for made: num_categories must be in 2..16777216, got 1"):
        pyro_ar.load(_rewrite(good, config=config))
    config = dict(payload["config"], conditional={"name": "categorical", "levels": 3})
    with pytest.raises(ValueError, match=r"Categorical has no options \['levels'\]"):
        pyro_ar.load(_rewrite(good, config=config))
    config = dict(payload["config"], width=3)
    with pytest.raises(ValueError, match=r"MADE has no options \['width'\]"):
        pyro_ar.load(_rewrite(good, config=config))
