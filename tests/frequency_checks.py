"""Chi-square checks of sampled discrete configurations against exact probabilities,
shared by the ordering, ensemble and inpainting tests."""

import torch
from scipy.stats import binomtest, chisquare

__all__ = ["config_index", "pool_small_bins", "assert_frequencies"]


def config_index(x, k):
    """Index of each configuration ``x: (*, n)`` in {0..k-1}^n, first variable most significant."""
    powers = k ** torch.arange(x.shape[-1] - 1, -1, -1)
    return (x.long() * powers).sum(-1)


def pool_small_bins(counts, expected, minimum=5.0):
    """Pool the bins expected below ``minimum`` together, and with the smallest other bin
    when the pool itself is below it, as the chi-square approximation needs."""
    order = torch.argsort(expected)
    counts, expected = counts[order], expected[order]
    start = 0
    # Keep at least two bins: with one, the small ones are tested by the binomial instead.
    while start < expected.numel() - 2 and expected[: start + 1].sum() < minimum:
        start += 1
    obs = torch.cat([counts[: start + 1].sum(0, keepdim=True), counts[start + 1 :]])
    exp = torch.cat([expected[: start + 1].sum(0, keepdim=True), expected[start + 1 :]])
    return obs, exp


def assert_frequencies(index, probs, min_pvalue=1e-3):
    """Chi-square goodness of fit of sampled configuration indices against exact probabilities."""
    probs = probs.detach()
    counts = torch.bincount(index, minlength=probs.numel()).double()
    expected = probs * index.numel()
    assert float(counts[expected == 0].sum()) == 0, "a configuration of probability zero was drawn"
    obs, exp = pool_small_bins(counts, expected)
    if exp[0] < 5:  # a nearly deterministic distribution: exact binomial test of the rare values
        pvalue = binomtest(int(obs[0]), index.numel(), float(exp[0] / index.numel())).pvalue
    else:
        pvalue = chisquare(obs.numpy(), exp.numpy()).pvalue
    assert pvalue > min_pvalue
