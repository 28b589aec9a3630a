"""PixelCNN: the AR property on 1- and 3-channel images, the blind spot of the plain stack
(and its absence in the gated one), exact normalization, the cached sampler against the naive
one, goodness of fit, gradients, validation, checkpoints and the program.

(The conformance harness also runs every generic test over ``specs_for("pixelcnn")``.)
"""

from __future__ import annotations

import itertools
import json

import pyro
import pytest
import torch
from scipy import stats
from torch.autograd.functional import jacobian

import pyro_ar
from pyro_ar import registry
from pyro_ar.conditionals import Bernoulli, Categorical, DiscretizedLogisticMixture, MixtureOfGaussians
from pyro_ar.nn.pixelcnn import raster_order, small_image_shape
from pyro_ar.program import cli

F64 = torch.float64


def build(shape, head=None, gated=True, context_size=None, channels=6, num_layers=3, kernel_size=3, seed=0,
          spread=0.3, **options):
    """A float64 PixelCNN with its weights perturbed (biases non-zero, dependencies visible)."""
    torch.manual_seed(seed)
    net = pyro_ar.PixelCNN(shape, channels=channels, num_layers=num_layers, kernel_size=kernel_size, gated=gated,
                           conditional=head or Bernoulli(), context_size=context_size, **options).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(spread * torch.randn_like(p))
    return net


def dependence(net, context=None, points=4, seed=0) -> torch.Tensor:
    """``|d params_i / d x_j|`` maximized over parameters, features and Gaussian points: ``(n, n)``."""
    cond = net.conditioner
    n, size = cond.event_size, cond.input_size
    gen = torch.Generator().manual_seed(seed)
    dep = torch.zeros(n, n, dtype=F64)
    for _ in range(points):
        x = torch.randn(n, size, generator=gen, dtype=F64)
        dep = torch.maximum(dep, jacobian(lambda v: cond(v, context), x).abs().amax(dim=(1, 3)))
    return dep


def before(order: torch.Tensor) -> torch.Tensor:
    rank = torch.argsort(order)
    return rank.unsqueeze(0) < rank.unsqueeze(1)


# ---- the order and the AR property ----------------------------------------------------------


def test_order_is_raster_then_channels():
    order = raster_order(3, 2, 2)
    # Step (h W + w) C + c draws variable c H W + h W + w: R, G, B of pixel (0, 0), then (0, 1), ...
    assert order.tolist() == [0, 4, 8, 1, 5, 9, 2, 6, 10, 3, 7, 11]
    net = pyro_ar.PixelCNN((3, 2, 2), channels=3, num_layers=1, kernel_size=3)
    assert torch.equal(net().order, order) and torch.equal(net.conditioner.order, order)
    assert torch.equal(pyro_ar.PixelCNN((2, 3), channels=2).conditioner.order, torch.arange(6))
    assert [small_image_shape(n) for n in (1, 4, 5, 6, 70)] == [(1, 1), (2, 2), (1, 5), (2, 3), (7, 10)]


@pytest.mark.parametrize("gated", [True, False], ids=["gated", "plain"])
@pytest.mark.parametrize("shape, head", [((3, 4), Bernoulli()), ((3, 4), Categorical(3)), ((3, 2, 3), Bernoulli()),
                                         ((3, 2, 3), Categorical(3)), ((3, 2, 3), DiscretizedLogisticMixture(2, 5))],
                         ids=["1ch-bern", "1ch-cat3", "3ch-bern", "3ch-cat3", "3ch-dlog"])
def test_ar_property_by_jacobian(shape, head, gated):
    net = build(shape, head, gated=gated, context_size=2)
    # Softplus has a positive derivative everywhere: a zero entry below is a missing weighted
    # path, not a ReLU that happens to be off at these points.
    net.conditioner.activation = torch.nn.Softplus()
    context = torch.randn(2, dtype=F64)
    dep = dependence(net, context)
    allowed = before(net.conditioner.order)
    assert torch.all(dep[~allowed] == 0), "parameters depend on a later variable"
    if len(shape) == 3:  # within a pixel: G sees R, B sees R and G (one pixel's variables c H W + q)
        hw = shape[1] * shape[2]
        for q in range(hw):
            assert dep[hw + q, q] > 0 and dep[2 * hw + q, q] > 0 and dep[2 * hw + q, hw + q] > 0, q
    # Every variable but the first sees an earlier one.
    order = net.conditioner.order
    assert ((dep > 0) & allowed)[order[1:]].any(-1).all()


def test_context_reaches_every_output():
    net = build((3, 2, 2), Categorical(3), context_size=3)
    x = net.conditional.encode(torch.randint(3, (12,)), F64)
    jac = jacobian(lambda c: net.conditioner(x, c), torch.randn(3, dtype=F64))
    assert torch.all(jac.abs().amax(dim=(1, 2)) > 0)


# ---- the blind spot ---------------------------------------------------------------------------


def test_gated_stack_has_no_blind_spot_and_plain_stack_has_one():
    """On a 4x5 image with a receptive field far wider than the image, every earlier pixel
    reaches every later one through the gated stack; the plain stack misses the pixel above
    and two to the right, (1, 4), from pixel (2, 2): the blind spot of masked k x k
    convolutions (the cone above-right of the pixel is never reached, however deep)."""
    shape, h, w = (4, 5), 4, 5
    nets = [build(shape, gated=g, channels=12, num_layers=4) for g in (True, False)]
    for net in nets:  # a positive derivative everywhere: a zero is a missing path (see above)
        net.conditioner.activation = torch.nn.Softplus()
    gated, plain = (dependence(net) for net in nets)
    allowed = before(torch.arange(h * w))
    assert torch.equal(gated > 0, allowed), "the gated PixelCNN misses an earlier pixel"
    target, blind = 2 * w + 2, 1 * w + 4
    assert plain[target, blind] == 0 and gated[target, blind] > 0
    assert plain[target, 1 * w + 3] > 0  # its neighbour to the left is seen
    blind_spots = allowed & (plain == 0)
    assert blind_spots.any() and torch.all(plain[~allowed] == 0)


# ---- exactness --------------------------------------------------------------------------------


@pytest.mark.parametrize("gated", [True, False], ids=["gated", "plain"])
def test_normalization_by_enumeration_on_a_2x3_binary_image(gated):
    net = build((2, 3), gated=gated, context_size=2, spread=0.6)
    d = net(torch.randn(3, 2, dtype=F64))
    support = d.enumerate_support()
    assert support.shape == (64, 3, 6)
    total = d.log_prob(support).exp().sum(0)
    torch.testing.assert_close(total, torch.ones(3, dtype=F64), atol=1e-12, rtol=0)
    # By hand: the same values built independently, scored one by one.
    grid = torch.tensor(list(itertools.product([0.0, 1.0], repeat=6)), dtype=F64)
    torch.testing.assert_close(d.log_prob(grid.unsqueeze(1)).exp().sum(0), total, atol=1e-12, rtol=0)


def naive_sample(d, noise):
    """Rerun the whole network for every variable, drawing it from ``noise[..., step, :]``."""
    head, cond = d.conditional, d.conditioner
    x = torch.zeros(noise.shape[:-1], dtype=head.sample_dtype(F64))
    for step, i in enumerate(d.order.tolist()):
        params = cond(head.encode(x, F64), d.context)[..., i, :]
        x[..., i] = head.sample_from_noise(params, noise[..., step, :])
    return x


@pytest.mark.parametrize("gated", [True, False], ids=["gated", "plain"])
@pytest.mark.parametrize("shape, head", [((4, 5), Bernoulli()), ((3, 3, 4), Categorical(4)),
                                         ((2, 3, 3), DiscretizedLogisticMixture(3, 16)), ((3, 3), MixtureOfGaussians(2))],
                         ids=["1ch-bern", "3ch-cat4", "2ch-dlog16", "1ch-mog2"])
def test_cached_sampler_equals_naive_sampler(shape, head, gated):
    net = build(shape, head, gated=gated, context_size=2, kernel_size=5, spread=0.5)
    d = net(torch.randn(2, 3, 2, dtype=F64))
    n = d.event_shape[0]
    torch.manual_seed(4)
    x = d.sample((2,))
    torch.manual_seed(4)  # the loop draws all its noise first, in step order
    noise = head.draw_noise(torch.Size((2, 2, 3, n)), F64, torch.device("cpu"))
    expected = naive_sample(d.expand((2, 2, 3)), noise)
    if head.is_discrete:
        assert torch.equal(x, expected)
        assert x.unique().numel() > 1
    else:
        torch.testing.assert_close(x, expected, atol=1e-10, rtol=0)


@pytest.mark.parametrize("gated", [True, False], ids=["gated", "plain"])
def test_dropout_acts_in_training_only(gated):
    net = build((3, 2, 3), Categorical(3), gated=gated, context_size=2, dropout=0.5)
    cond, head = net.conditioner, net.conditional
    context = torch.randn(2, dtype=F64)
    x = head.encode(torch.randint(3, (4, 18)), F64)
    net.train()
    assert not torch.equal(cond(x, context), cond(x, context))
    # Dropout multiplies features elementwise: under any one dropout mask the AR property holds.
    net.conditioner.activation = torch.nn.Softplus()
    torch.manual_seed(5)
    dep = dependence(net, context, points=2)
    assert torch.all(dep[~before(cond.order)] == 0) and dep.sum() > 0
    net.conditioner.activation = torch.nn.ReLU()
    # The sampler never drops: in training mode it draws what it draws in evaluation mode.
    d = net(context).expand((3,))
    torch.manual_seed(6)
    drawn_in_training = d.sample((2,))
    net.eval()
    torch.testing.assert_close(cond(x, context), cond(x, context), atol=0, rtol=0)
    torch.manual_seed(6)
    x_eval = d.sample((2,))
    assert torch.equal(drawn_in_training, x_eval)
    torch.manual_seed(6)
    noise = head.draw_noise(torch.Size((2, 3, 18)), F64, torch.device("cpu"))
    assert torch.equal(x_eval, naive_sample(d.expand((2, 3)), noise))
    lp = net(context).log_prob(x_eval)
    torch.testing.assert_close(lp, net(context).log_prob(x_eval), atol=0, rtol=0)
    assert torch.equal(net.eval().conditioner(x), build((3, 2, 3), Categorical(3), gated=gated, context_size=2,
                                                        dropout=0.0).eval().conditioner(x))


def test_incremental_state_matches_forward_on_a_wide_image():
    """Several rows, many columns, 3 channels and a kernel wider than the image."""
    net = build((3, 4, 9), Categorical(3), context_size=2, kernel_size=7, num_layers=2)
    cond, head = net.conditioner, net.conditional
    context = torch.randn(5, 2, dtype=F64)
    x = torch.randint(3, (5, cond.event_size))
    encoded = head.encode(x, F64)
    full = cond(encoded, context)
    state = cond.incremental(context, torch.Size([5]))
    for step, i in enumerate(cond.order.tolist()):
        torch.testing.assert_close(state.params(step), full[:, i], atol=1e-10, rtol=0)
        state.observe(step, encoded[:, i])


def test_samples_follow_the_density_on_a_3_channel_image(exact_chi2sf):
    """Sample frequencies of a (3, 1, 2) binary image (64 values) against exp(log_prob)."""
    net = build((3, 1, 2), spread=0.8)
    d = net()
    pyro.set_rng_seed(0)
    with torch.no_grad():
        x = d.sample((20000,))
        probs = d.log_prob(d.enumerate_support()).exp()
    index = (x.long() * 2 ** torch.arange(5, -1, -1)).sum(-1)
    counts = torch.bincount(index, minlength=64).double()
    expected = 20000 * probs
    stat = float(((counts - expected) ** 2 / expected).sum())
    assert stat < stats.chi2.isf(1e-4, 63)
    # Power: the same statistic rejects samples drawn with the pixels' dependencies dropped.
    zeros = net.conditional.encode(torch.zeros(6), F64)
    wrong = net.conditional.distribution(net.conditioner(zeros)).sample((20000,))
    wrong_counts = torch.bincount((wrong.long() * 2 ** torch.arange(5, -1, -1)).sum(-1), minlength=64).double()
    assert float(((wrong_counts - expected) ** 2 / expected).sum()) > stats.chi2.isf(1e-4, 63)


@pytest.mark.parametrize("gated", [True, False], ids=["gated", "plain"])
def test_gradients_reach_every_parameter(gated):
    net = build((2, 3, 3), Categorical(3), gated=gated, context_size=2)
    d = net(torch.randn(8, 2, dtype=F64))
    x = torch.randint(3, (8, 18))
    (-d.log_prob(x).mean()).backward()
    for name, p in net.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, f"no gradient reaches {name}"


# ---- validation -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"image_shape": 5}, "image_shape"),
        ({"image_shape": (4,)}, "image_shape"),
        ({"image_shape": (1, 2, 3, 4)}, "image_shape"),
        ({"image_shape": (0, 3)}, "image_shape"),
        ({"image_shape": (2.0, 3)}, "image_shape"),
        ({"image_shape": (True, 3)}, "image_shape"),
        ({"image_shape": "23"}, "image_shape"),
        ({"image_shape": (4, 2, 2), "channels": 3}, "channels"),
        ({"image_shape": (2, 2), "channels": 0}, "channels"),
        ({"image_shape": (2, 2), "num_layers": 0}, "num_layers"),
        ({"image_shape": (2, 2), "kernel_size": 4}, "kernel_size"),
        ({"image_shape": (2, 2), "kernel_size": 1}, "kernel_size"),
        ({"image_shape": (2, 2), "gated": "yes"}, "gated"),
        ({"image_shape": (2, 2), "dropout": 1.0}, r"dropout must be a number in \[0, 1\), got 1.0"),
        ({"image_shape": (2, 2), "dropout": -0.1}, r"dropout must be a number in \[0, 1\)"),
        ({"image_shape": (2, 2), "dropout": "0.1"}, r"dropout must be a number in \[0, 1\)"),
        ({"image_shape": (2, 2), "dropout": True}, r"dropout must be a number in \[0, 1\)"),
        ({"image_shape": (2, 2), "dropout": float("nan")}, r"dropout must be a number in \[0, 1\)"),
        ({"image_shape": (2, 2), "order": "reverse"}, "order is fixed"),
        ({"image_shape": (2, 2), "order": "random"}, "order is fixed"),
        ({"image_shape": (2, 2), "order": [0, 1, 2, 3]}, "order is fixed"),
        ({"image_shape": (2, 2), "context_size": 0}, "context_size"),
    ],
)
def test_bad_arguments_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        pyro_ar.PixelCNN(**kwargs)


def test_values_of_the_wrong_length_or_context_are_refused():
    d = pyro_ar.PixelCNN((2, 3), channels=2, num_layers=1, context_size=2)(torch.zeros(2))
    with pytest.raises(ValueError, match="shape"):
        d.log_prob(torch.zeros(5))
    with pytest.raises(ValueError, match="shape"):
        d.log_prob(torch.zeros(2, 3))  # an image not flattened
    with pytest.raises(ValueError, match="context"):
        pyro_ar.PixelCNN((2, 3), channels=2, num_layers=1, context_size=2)(torch.zeros(3))


# ---- registry, checkpoints, program ------------------------------------------------------------


def test_registry_declares_the_image_shape_and_the_fixed_order():
    entry = registry.conditioner_entry("pixelcnn")
    assert entry.event_argument == "image_shape" and entry.fixed_order
    assert "event_size" not in {o.name for o in entry.options}
    dropout = next(o for o in entry.model_options if o.name == "dropout")  # a CLI flag, with its help
    assert dropout.default == 0.0 and "training" in dropout.help
    assert "image_shape" not in {o.name for o in entry.model_options}  # the data give it, not a flag
    assert entry.event_kwargs(6) == {"image_shape": (2, 3)}
    assert registry.conditioner_entry("made").event_kwargs(6) == {"event_size": 6}
    assert pyro_ar.distributions.PixelCNN is pyro_ar.models.factory("pixelcnn").distribution_class
    assert isinstance(pyro_ar.PixelCNN((2, 2), channels=2)(), pyro_ar.distributions.PixelCNN)


def test_checkpoint_round_trip(tmp_path):
    net = build((3, 2, 3), DiscretizedLogisticMixture(2, 8), gated=False, context_size=2).float()
    path = tmp_path / "pixelcnn.pt"
    pyro_ar.save(net, path)
    loaded = pyro_ar.load(path)
    assert type(loaded) is type(net) and loaded.config()["image_shape"] == [3, 2, 3]
    assert loaded.config()["gated"] is False and loaded.conditional == net.conditional
    x, c = torch.randint(8, (4, 18)), torch.randn(4, 2)
    torch.testing.assert_close(loaded(c).log_prob(x), net(c).log_prob(x), atol=0, rtol=0)


SMALL = ["--channels", "8", "--num-layers", "2", "--kernel-size", "3", "--epochs", "2", "--max-train", "300",
         "--no-progress", "--num-samples", "4"]


def test_fit_on_the_digits_class_conditional_and_categorical(tmp_path, capsys, restore_torch_state):
    out = tmp_path / "run"
    assert cli.main(["fit", "--model", "pixelcnn", "--context", "labels", "--out", str(out), *SMALL]) == 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["model"] == "pixelcnn" and metrics["config"]["image_shape"] == [8, 8]
    assert metrics["config"]["context_size"] == 10 and metrics["test_nll"] < 64 * 0.70
    assert cli.main(["evaluate", "--checkpoint", str(out / "model.pt"), "--json"]) == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert abs(report["test_nll"] - metrics["test_nll"]) < 1e-5 * metrics["test_nll"]
    cat = tmp_path / "cat"
    argv = ["fit", "--model", "pixelcnn", "--conditional", "dlogistic", "--levels", "4", "--num-components", "2",
            "--out", str(cat), *SMALL]
    assert cli.main(argv) == 0
    assert json.loads((cat / "metrics.json").read_text())["config"]["conditional"]["num_levels"] == 4


def test_program_refuses_an_order_and_data_without_an_image_shape(tmp_path, capsys, restore_torch_state):
    assert cli.main(["fit", "--model", "pixelcnn", "--order", "reverse", "--out", str(tmp_path / "a"), *SMALL]) == 1
    assert "fixed order" in capsys.readouterr().err
    table = tmp_path / "table.npy"
    import numpy as np

    np.save(table, (np.random.default_rng(0).random((60, 5)) > 0.5).astype(np.float32))
    assert cli.main(["fit", "--model", "pixelcnn", "--data", str(table), "--out", str(tmp_path / "b"), *SMALL]) == 1
    assert "needs data with a image_shape" in capsys.readouterr().err
    assert "--image-shape" not in cli.build_parser()._subparsers._group_actions[0].choices["fit"].format_help()
