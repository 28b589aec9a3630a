"""pyro_ar inside Pyro: as a likelihood, as a prior (enumerated, sampled, NUTS), as a guide,
in a PyroModule with priors on its weights, and Pyro's own conformance points (trace shapes
under plates, nested plates and expand, mask/to_event, Predictive)."""

import copy

import pyro
import pyro.distributions as dist
import pytest
import torch
from pyro import poutine
from pyro.infer import MCMC, NUTS, SVI, Predictive, Trace_ELBO, TraceEnum_ELBO, config_enumerate
from pyro.infer.autoguide import AutoNormal
from pyro.infer.mcmc.util import initialize_model
from pyro.nn import PyroModule, PyroSample

import pyro_ar
from pyro_ar.conditionals import Bernoulli, MixtureOfGaussians
from pyro_ar.program.datasets import load_digits


def perturbed(net, seed, scale=0.5):
    """``net`` with every parameter moved by seeded noise (so conditionals depend on the past)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in net.parameters():
            p.add_(scale * torch.randn(p.shape, generator=gen, dtype=p.dtype))
    return net


@pytest.fixture(autouse=True)
def fresh_param_store():
    pyro.clear_param_store()
    yield
    pyro.clear_param_store()


# ---- as a likelihood -------------------------------------------------------------------------


def test_svi_on_a_likelihood_equals_maximum_likelihood_with_adam():
    data = load_digits("train", "bernoulli")[:200]
    torch.manual_seed(0)
    net_svi = pyro_ar.MADE(event_size=64, hidden_sizes=[32])
    net_ml = copy.deepcopy(net_svi)

    def model(x):
        pyro.module("ar", net_svi)
        with pyro.plate("data", x.shape[0]):
            pyro.sample("x", net_svi(), obs=x)

    def guide(x):  # no latent variables: the ELBO is the log-likelihood
        pass

    svi = SVI(model, guide, pyro.optim.Adam({"lr": 1e-2}), Trace_ELBO())
    with torch.no_grad():
        initial = -net_svi().log_prob(data).sum()
    assert svi.evaluate_loss(data) == pytest.approx(initial.item(), rel=1e-6)

    opt = torch.optim.Adam(net_ml.parameters(), lr=1e-2)
    for _ in range(30):
        svi.step(data)
        opt.zero_grad()
        (-net_ml().log_prob(data).sum()).backward()
        opt.step()
    with torch.no_grad():
        nll_svi = -net_svi().log_prob(data).mean()
        nll_ml = -net_ml().log_prob(data).mean()
    assert nll_svi < initial / len(data) - 5.0  # it did learn
    assert torch.allclose(nll_svi, nll_ml, rtol=1e-4), (nll_svi, nll_ml)


# ---- Pyro's conformance points ---------------------------------------------------------------


def test_trace_records_log_prob_of_batch_shape_under_a_plate():
    torch.manual_seed(1)
    net = pyro_ar.NADE(event_size=5, hidden_size=8, context_size=2)
    x = torch.bernoulli(torch.full((6, 5), 0.5))
    context = torch.randn(6, 2)

    def model(subsample_size=None):
        with pyro.plate("data", 6, subsample_size=subsample_size) as idx:
            pyro.sample("x", net(context[idx]), obs=x[idx])

    tr = poutine.trace(model).get_trace()
    tr.compute_log_prob()
    site = tr.nodes["x"]
    assert site["log_prob"].shape == (6,)
    assert torch.allclose(site["log_prob"], net(context).log_prob(x))
    assert isinstance(site["fn"], pyro_ar.distributions.NADE)

    torch.manual_seed(2)
    tr = poutine.trace(model).get_trace(subsample_size=3)
    tr.compute_log_prob()
    site = tr.nodes["x"]
    idx = tr.nodes["data"]["value"]
    assert site["log_prob"].shape == (3,)
    assert site["scale"] == 2.0  # 6 / 3: Pyro scales the recorded log_prob
    assert torch.allclose(site["log_prob"], 2.0 * net(context[idx]).log_prob(x[idx]))


@pytest.mark.parametrize("num_masks", [1, 3], ids=["chain", "ensemble"])
@pytest.mark.parametrize("with_context", [False, True], ids=["expanded", "context"])
def test_nested_plates_expand_the_distribution(with_context, num_masks):
    torch.manual_seed(3)
    net = pyro_ar.MADE(event_size=4, hidden_sizes=[8], context_size=2 if with_context else None, num_masks=num_masks)
    kind = pyro_ar.Autoregressive if num_masks == 1 else pyro_ar.Ensemble
    context = torch.randn(4, 2) if with_context else None

    def model():
        with pyro.plate("outer", 3, dim=-2), pyro.plate("inner", 4, dim=-1):
            return pyro.sample("x", net(context))

    tr = poutine.trace(model).get_trace()
    tr.compute_log_prob()
    site = tr.nodes["x"]
    assert isinstance(site["fn"], kind)  # a real expand, not ExpandedDistribution
    assert site["fn"].batch_shape == (3, 4) and site["fn"].event_shape == (4,)
    assert site["value"].shape == (3, 4, 4)
    assert site["log_prob"].shape == (3, 4)
    assert "x dist 3 4 | 4" in tr.format_shapes()
    # Every slice along the expanded dimension scores like the unexpanded distribution.
    assert torch.allclose(site["log_prob"], net(context).log_prob(site["value"]))
    # Expanding again keeps the type and the values.
    again = site["fn"].expand((2, 3, 4))
    assert isinstance(again, kind) and again.batch_shape == (2, 3, 4)
    assert torch.allclose(again.log_prob(site["value"]), site["log_prob"].expand(2, 3, 4))


def test_mask_and_to_event():
    torch.manual_seed(4)
    net = pyro_ar.FVSBN(event_size=3, conditional=Bernoulli())
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 0.0, 1.0], [1.0, 1.0, 1.0]])
    d = net().expand((3,))
    lp = d.log_prob(x)
    keep = torch.tensor([True, False, True])
    assert torch.equal(d.mask(keep).log_prob(x), torch.where(keep, lp, torch.zeros(())))
    assert torch.equal(d.mask(False).log_prob(x), torch.zeros(3))
    joint = d.to_event(1)
    assert joint.batch_shape == () and joint.event_shape == (3, 3)
    assert torch.allclose(joint.log_prob(x), lp.sum())

    def model():
        with pyro.plate("data", 3), poutine.mask(mask=keep):
            pyro.sample("x", net(), obs=x)

    tr = poutine.trace(model).get_trace()
    tr.compute_log_prob()
    assert torch.allclose(tr.nodes["x"]["log_prob_sum"], lp[keep].sum())


@pytest.mark.parametrize("parallel", [False, True])
def test_predictive_draws_samples_of_the_right_shape(parallel):
    torch.manual_seed(5)
    net = pyro_ar.NADE(event_size=4, hidden_size=8, context_size=1)
    context = torch.randn(6, 1)

    def model(x=None):
        with pyro.plate("data", 6):
            pyro.sample("x", net(context), obs=x)

    samples = Predictive(model, num_samples=7, parallel=parallel)()
    assert samples["x"].shape == (7, 6, 4)
    assert set(samples["x"].unique().tolist()) <= {0.0, 1.0}


# ---- as a prior ------------------------------------------------------------------------------


def _binary_latent_model(prior_net, y, weights):
    def model(y=y):
        with pyro.plate("data", y.shape[0]):
            z = pyro.sample("z", prior_net())
            pyro.sample("y", dist.Normal((z * weights).sum(-1), 0.5), obs=y)

    return model


def _exact_terms(prior, weights, y):
    """log p(z) ``(2^n, 1)`` and log p(y_i | z) ``(2^n, N)`` over every joint z."""
    zs = prior.enumerate_support().unsqueeze(1)  # (2^n, 1, n): broadcasts against data
    log_prior = prior.log_prob(zs)
    log_lik = dist.Normal((zs * weights).sum(-1), 0.5).log_prob(y)
    return zs, log_prior, log_lik


def test_binary_ar_prior_enumerated_gives_the_exact_evidence():
    prior_net = perturbed(pyro_ar.FVSBN(event_size=3), seed=6, scale=1.0)
    weights = torch.tensor([1.0, -2.0, 0.5])
    y = torch.tensor([0.3, -1.5, 1.2, 0.0])
    model = config_enumerate(_binary_latent_model(prior_net, y, weights))
    loss = TraceEnum_ELBO(max_plate_nesting=1).loss(model, lambda y=y: None)
    with torch.no_grad():
        _, log_prior, log_lik = _exact_terms(prior_net(), weights, y)
        log_evidence = (log_prior + log_lik).logsumexp(0).sum()
    assert loss == pytest.approx(-log_evidence.item(), rel=1e-5)


def test_binary_ar_prior_sampled_with_an_ar_guide_gives_an_unbiased_elbo():
    # Latent z sampled from an amortized AR guide q(z | y_i); the MC ELBO must match the
    # exact one (by enumeration) within its exact standard error.
    prior_net = perturbed(pyro_ar.FVSBN(event_size=3), seed=7, scale=1.0)
    guide_net = perturbed(pyro_ar.MADE(event_size=3, hidden_sizes=[8], context_size=1), seed=8)
    weights = torch.tensor([1.0, -2.0, 0.5])
    y = torch.tensor([0.3, -1.5, 1.2, 0.0])
    model = _binary_latent_model(prior_net, y, weights)

    def guide(y=y):
        pyro.module("guide_net", guide_net)
        with pyro.plate("data", y.shape[0]):
            pyro.sample("z", guide_net(y.unsqueeze(-1)))

    pyro.set_rng_seed(9)
    particles = 2000
    loss = Trace_ELBO(num_particles=particles, vectorize_particles=True, max_plate_nesting=1).loss(model, guide)
    with torch.no_grad():
        zs, log_prior, log_lik = _exact_terms(prior_net(), weights, y)
        q = guide_net(y.unsqueeze(-1))  # batch (N,)
        log_q = q.log_prob(zs)  # (2^n, N)
        integrand = log_prior + log_lik - log_q
        mean = (log_q.exp() * integrand).sum(0)  # per data point
        var = (log_q.exp() * (integrand - mean) ** 2).sum(0)
    se = (var.sum() / particles).sqrt()
    assert abs(-loss - mean.sum().item()) < 4 * se.item(), (-loss, mean.sum(), se)


def test_nuts_on_a_mixture_of_gaussians_ar_prior():
    torch.manual_seed(10)
    prior_net = perturbed(pyro_ar.MADE(event_size=2, hidden_sizes=[8], conditional=MixtureOfGaussians(2)), seed=10)
    prior_net.requires_grad_(False)
    y = torch.tensor(1.0)

    def model():
        z = pyro.sample("z", prior_net())
        pyro.sample("y", dist.Normal(z.sum(-1), 0.5), obs=y)

    # The potential energy HMC uses is differentiable in z (checked against finite differences).
    _, potential_fn, _, _ = initialize_model(model)
    z0 = {"z": torch.tensor([0.3, -0.2], requires_grad=True)}
    (grad,) = torch.autograd.grad(potential_fn(z0), z0["z"])
    h = 1e-3
    for i in range(2):
        e = torch.zeros(2)
        e[i] = h
        fd = (potential_fn({"z": z0["z"].detach() + e}) - potential_fn({"z": z0["z"].detach() - e})) / (2 * h)
        assert abs(grad[i] - fd) < 1e-2 * (1 + abs(fd)), (grad, fd)

    pyro.set_rng_seed(31)
    mcmc = MCMC(NUTS(model, max_tree_depth=4), num_samples=100, warmup_steps=50, disable_progbar=True)
    mcmc.run()
    z = mcmc.get_samples()["z"]
    assert z.shape == (100, 2) and torch.isfinite(z).all()
    # Posterior mean by self-normalized importance sampling from the prior.
    with torch.no_grad():
        zp = prior_net().sample((100000,))
        log_w = dist.Normal(zp.sum(-1), 0.5).log_prob(y)
        w = (log_w - log_w.logsumexp(0)).exp().unsqueeze(-1)
        mean = (w * zp).sum(0)
        sd = (w * (zp - mean) ** 2).sum(0).sqrt()
    assert ((z.mean(0) - mean).abs() < 0.5 * sd).all(), (z.mean(0), mean, sd)


# ---- as a guide ------------------------------------------------------------------------------


def test_mog_made_guide_fits_a_correlated_posterior():
    # z ~ N(0, I_2), y ~ N(z_1 + z_2, 0.5^2), y = 1: the posterior is Gaussian with correlation
    # -0.8, and log p(y) = log N(1; 0, 1.5^2). The best factorized Gaussian guide stays
    # -0.5 log(1 - 0.8^2) = 0.51 nats below log p(y); an AR guide can close the gap.
    torch.manual_seed(12)
    pyro.set_rng_seed(12)
    guide_net = pyro_ar.MADE(event_size=2, hidden_sizes=[16], conditional=MixtureOfGaussians(2))
    y = torch.tensor(1.0)

    def model():
        z = pyro.sample("z", dist.Normal(torch.zeros(2), 1.0).to_event(1))
        pyro.sample("y", dist.Normal(z.sum(-1), 0.5), obs=y)

    def guide():
        pyro.module("guide_net", guide_net)
        pyro.sample("z", guide_net())

    tr = poutine.trace(guide).get_trace()
    assert tr.nodes["z"]["fn"].has_rsample  # so Trace_ELBO takes pathwise gradients
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.03}), Trace_ELBO(num_particles=8, vectorize_particles=True))
    for _ in range(150):
        svi.step()
    log_evidence = dist.Normal(0.0, 1.5).log_prob(y).item()
    with torch.no_grad():
        elbo = -Trace_ELBO(num_particles=4000, vectorize_particles=True).loss(model, guide)
        z = guide_net().sample((4000,))
    gap = log_evidence - elbo
    assert -0.05 < gap < 0.3, gap  # a mean-field guide cannot go below 0.51
    assert torch.corrcoef(z.T)[0, 1] < -0.6
    assert torch.allclose(z.mean(0), torch.tensor([4.0, 4.0]) / 9, atol=0.25)  # posterior mean (4/9, 4/9)


# ---- PyroModule: priors on a conditioner's weights -------------------------------------------


class BayesianFVSBN(PyroModule):
    """An FVSBN with a Normal prior on its weight matrix, declared through ``PyroSample``.

    The distribution evaluates its conditioner lazily (when Pyro scores the site), so the
    weight is sampled once per call of this module and handed to the conditioner as a plain
    tensor: every later evaluation sees the traced value.
    """

    def __init__(self, n: int, prior_scale: float = 3.0):
        super().__init__()
        self.ar = pyro_ar.FVSBN(event_size=n)
        del self.ar.conditioner.weight  # replaced by the sampled value at each call
        self.weight = PyroSample(dist.Normal(0.0, prior_scale).expand([n, n]).to_event(2))

    def forward(self, x=None, num_data=None):
        self.ar.conditioner.weight = self.weight  # one traced sample site, "weight"
        with pyro.plate("data", x.shape[0] if x is not None else num_data):
            return pyro.sample("x", self.ar(), obs=x)


def test_bayesian_fvsbn_through_pyro_sample():
    torch.manual_seed(13)
    model = BayesianFVSBN(3)
    # Data where x_1 copies x_0 (90%): the posterior on weight[1, 0] must become positive.
    x0 = torch.bernoulli(torch.full((100,), 0.5))
    x1 = torch.where(torch.rand(100) < 0.9, x0, 1 - x0)
    x = torch.stack([x0, x1, torch.bernoulli(torch.full((100,), 0.3))], -1)

    tr = poutine.trace(model).get_trace(x)
    tr.compute_log_prob()
    weight = tr.nodes["weight"]["value"]
    assert weight.shape == (3, 3) and tr.nodes["weight"]["log_prob"].shape == ()
    # The likelihood uses exactly the traced weight (through the AR mask).
    plain = pyro_ar.FVSBN(event_size=3)
    with torch.no_grad():
        plain.conditioner.weight.copy_(weight)
        plain.conditioner.output_bias.copy_(model.ar.conditioner.output_bias)
    assert torch.allclose(tr.nodes["x"]["log_prob"], plain().log_prob(x))
    # Any sampled weight still gives a normalized AR distribution.
    d = tr.nodes["x"]["fn"]
    assert torch.allclose(d.log_prob(d.enumerate_support(expand=False)).exp().sum(0), torch.ones(()))

    guide = AutoNormal(model)
    svi = SVI(model, guide, pyro.optim.Adam({"lr": 0.05}), Trace_ELBO())
    pyro.set_rng_seed(14)
    for _ in range(200):
        svi.step(x)
    posterior_mean = guide.median(x)["weight"]
    assert posterior_mean[1, 0] > 1.5, posterior_mean
    samples = Predictive(model, guide=guide, num_samples=5, return_sites=["weight", "x"])(None, num_data=4)
    assert samples["x"].shape == (5, 4, 3)
    assert samples["weight"].shape[-2:] == (3, 3) and samples["weight"].numel() == 5 * 9


def test_pyro_sample_directly_on_a_converted_conditioner():
    from pyro.nn.module import to_pyro_module_

    torch.manual_seed(15)
    net = pyro_ar.FVSBN(event_size=3)
    to_pyro_module_(net)
    net.conditioner.weight = PyroSample(dist.Normal(0.0, 3.0).expand([3, 3]).to_event(2))
    x = torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, 1.0]])

    def model():
        # Weights are drawn where the distribution is built: outside the data plate, so
        # that all data share one draw (inside it, Pyro would batch them per datum).
        d = net()
        with pyro.plate("data", 2):
            pyro.sample("x", d, obs=x)

    tr = poutine.trace(model).get_trace()
    weight_sites = [name for name in tr.nodes if name.endswith("weight")]
    assert len(weight_sites) == 1
    tr.compute_log_prob()
    plain = pyro_ar.FVSBN(event_size=3)
    with torch.no_grad():
        plain.conditioner.weight.copy_(tr.nodes[weight_sites[0]]["value"])
        plain.conditioner.output_bias.copy_(net.conditioner.output_bias)
    assert torch.allclose(tr.nodes["x"]["log_prob"], plain().log_prob(x))


def test_every_weight_sampled_binds_one_draw_per_distribution():
    """With PyroSample on all parameters, a distribution keeps the draw it was built with:
    scoring twice gives the same value, and sampling uses the same weights."""
    from pyro.nn.module import to_pyro_module_

    pyro.set_rng_seed(3)
    net = pyro_ar.FVSBN(event_size=3)
    to_pyro_module_(net)
    net.conditioner.weight = PyroSample(dist.Normal(0.0, 3.0).expand([3, 3]).to_event(2))
    net.conditioner.output_bias = PyroSample(dist.Normal(0.0, 3.0).expand([3, 1]).to_event(2))
    assert list(net.parameters()) == []
    d = net()
    x = d.enumerate_support()
    first = d.log_prob(x)
    assert torch.allclose(first, d.log_prob(x))
    assert torch.allclose(first.exp().sum(), torch.tensor(1.0))
    # Another distribution draws other weights.
    assert not torch.allclose(first, net().log_prob(x))
    # Samples follow the bound weights: frequencies match exp(log_prob) of this draw.
    s = d.sample((20000,))
    codes = (s * torch.tensor([4.0, 2.0, 1.0])).sum(-1).long()
    freq = torch.bincount(codes, minlength=8).float() / len(codes)
    probs = first.exp()[torch.argsort((x * torch.tensor([4.0, 2.0, 1.0])).sum(-1))]
    assert (freq - probs).abs().max() < 0.02
