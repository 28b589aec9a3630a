"""Speed of pyro_ar's log_prob and sampling, as ratios measured in one run.

Sections (n = 784 variables, d = 500 hidden units, batch 100 by default):

1. log_prob forward (no grad) and forward+backward of FVSBN, NADE, MADE (Bernoulli heads)
   and a MoG-MADE (mixture of Gaussians head).
2. MADE as a fraction of a dense MLP of the same shapes: the same matmuls with no masks,
   no head, no distribution object (the hardware limit), and where MADE's log_prob time
   goes (masked network, head, support check), beside the dense MLP with the same
   Bernoulli log-likelihood.
3. NADE against two straightforward implementations: a cumulative sum over the full
   (B, n, d) tensor, and a Python loop over the n positions.
4. Peak memory of NADE's log_prob forward+backward, ours against both (CPU: peak resident
   memory of a fresh process; CUDA: ``torch.cuda.max_memory_allocated``), and the bytes
   autograd saves for the backward pass.
5. Sampling time divided by one log_prob pass, for each model, against naive sampling that
   reruns the full network once per variable (timed over ``--naive-steps`` steps and scaled
   to n), and against nflows' ``MixtureOfGaussiansMADE`` sampling when nflows is importable.
   FVSBN and MADE draw blocks of variables by fixed-point rounds, whose number depends on
   how strongly the variables are coupled, so both are also timed after ``--train-epochs``
   epochs of training on binarized Fashion-MNIST (when the data is installed), and the
   rounds per block are reported.

Usage (from the repository root)::

    python benchmarks/speed.py                                # CPU -> results/speed_cpu.json
    python benchmarks/speed.py --device cuda                  # GPU -> results/speed_cuda.json
    bash benchmarks/nflows_env.sh                             # once: a venv with nflows
    benchmarks/.venv-nflows/bin/python benchmarks/speed.py    # adds the nflows rows

Prints markdown tables and writes a JSON file with the machine, date and command.
"""

from __future__ import annotations

import argparse
import functools
import gc
import json
import os
import re
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Tuple

import torch
import torch.nn.functional as F

import pyro_ar
from pyro_ar.conditionals import MixtureOfGaussians
from pyro_ar.program.training import train

from bench_utils import (
    RESULTS_DIR, command_line, log_prob_fns, machine_info, markdown_table, naive_sample, now_iso, time_interleaved,
    write_json,
)

# ---- straightforward NADE baselines (batch-major, as a user would first write them) -------


def nade_params(net: pyro_ar.NADE) -> Tuple[torch.Tensor, ...]:
    """``W (n, d), V (n, d), c (d,), b (n,)`` of a Bernoulli NADE with the identity order."""
    cond = net.conditioner
    if not torch.equal(cond.orders[0].cpu(), torch.arange(cond.event_size)):
        raise ValueError("the baselines assume the identity order")
    return cond.in_weight[:, 0], cond.out_weight[:, 0], cond.hidden_bias, cond.output_bias[:, 0]


def nade_log_prob_cumsum(x, W, V, c, b):
    """log p(x) with one cumulative sum over the full (B, n, d) tensor: ``x (B, n) -> (B,)``."""
    steps = x.unsqueeze(-1) * W  # (B, n, d)
    before = F.pad(steps[:, :-1], (0, 0, 1, 0)).cumsum(1)  # sum over j < k
    hidden = torch.sigmoid(before + c)
    logits = (hidden * V).sum(-1) + b
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


def nade_log_prob_loop(x, W, V, c, b):
    """log p(x) with a Python loop over the n positions: ``x (B, n) -> (B,)``."""
    a = c.expand(x.shape[0], -1)
    logits = []
    for i in range(x.shape[1]):
        logits.append(torch.sigmoid(a) @ V[i] + b[i])
        a = a + x[:, i : i + 1] * W[i]
    logits = torch.stack(logits, -1)
    return -F.binary_cross_entropy_with_logits(logits, x, reduction="none").sum(-1)


NADE_BASELINES: Dict[str, Callable] = {"cumsum": nade_log_prob_cumsum, "loop": nade_log_prob_loop}


# ---- models and data ---------------------------------------------------------------------


def build_models(n: int, d: int, components: int, device: str, seed: int) -> Dict[str, pyro_ar.AutoregressiveModel]:
    torch.manual_seed(seed)
    models = {
        "FVSBN": pyro_ar.FVSBN(n),
        "NADE": pyro_ar.NADE(n, d),
        "MADE": pyro_ar.MADE(n, [d]),
        "MADE 2 layers": pyro_ar.MADE(n, [d, d]),
        f"MoG-MADE (K={components})": pyro_ar.MADE(n, [d], conditional=MixtureOfGaussians(components)),
    }
    return {k: m.to(device) for k, m in models.items()}


def data_for(model: pyro_ar.AutoregressiveModel, batch: int, device: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    if isinstance(model.conditional, MixtureOfGaussians):
        return torch.randn(batch, model.event_size, generator=gen).to(device)
    return torch.bernoulli(torch.full((batch, model.event_size), 0.3), generator=gen).to(device)


def bernoulli_draws(n: int, batch: int, device: str) -> torch.Tensor:
    """``n`` steps of a bare sampling loop: one ``torch.distributions.Bernoulli`` draw per variable."""
    logits = torch.zeros(batch, device=device)
    x = torch.empty(batch, n, device=device)
    for i in range(n):
        x[:, i] = torch.distributions.Bernoulli(logits=logits, validate_args=False).sample()
    return x


# ---- memory ------------------------------------------------------------------------------


def _status_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        return int(re.search(rf"{field}:\s+(\d+)", f.read()).group(1))


def saved_tensor_bytes(fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct storages autograd saves for the backward pass of ``fn()``."""
    storages: Dict[int, int] = {}

    def pack(t: torch.Tensor):
        s = t.untyped_storage()
        storages[s.data_ptr()] = s.nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        out = fn()
    del out
    return sum(storages.values())


def nade_variant_fn(variant: str, model, x) -> Callable[[], torch.Tensor]:
    """The scalar loss of one NADE implementation (``ours``, ``cumsum`` or ``loop``)."""
    if variant == "ours":
        return lambda: model().log_prob(x).sum()
    params = [p.detach().clone().requires_grad_() for p in nade_params(model)]
    return lambda: NADE_BASELINES[variant](x, *params).sum()


def memory_probe(args: argparse.Namespace) -> None:
    """Child process: peak memory of one NADE forward+backward; prints a JSON line."""
    torch.manual_seed(args.seed)
    model = pyro_ar.NADE(args.n, args.d).to(args.device)
    x = data_for(model, args.batch, args.device)
    loss = nade_variant_fn(args.memory_probe, model, x)
    loss().backward()  # warm up, then measure the steady state
    model.zero_grad(set_to_none=True)
    gc.collect()
    if args.device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        loss().backward()
        torch.cuda.synchronize()
        peak = torch.cuda.max_memory_allocated() - base
        method = "torch.cuda.max_memory_allocated"
    else:
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")  # reset the peak resident set size to the current one
            method = "VmHWM - VmRSS (Linux, peak reset after a warm-up)"
        except OSError:
            method = "VmHWM - VmRSS (Linux, no reset: includes the warm-up)"
        base = _status_kib("VmRSS") * 1024
        loss().backward()
        peak = _status_kib("VmHWM") * 1024 - base
    print(json.dumps({"peak_bytes": peak, "method": method}))


def measure_memory(args: argparse.Namespace, variant: str) -> Dict[str, Any]:
    cmd = [sys.executable, __file__, "--memory-probe", variant]
    cmd += ["--n", str(args.n), "--d", str(args.d), "--batch", str(args.batch), "--device", args.device]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    # A fixed mmap threshold makes glibc return every freed block of 64 KiB or more to the
    # system at once, so that the resident set tracks live tensors (else freed memory kept
    # by the allocator after the warm-up hides later allocations).
    env = {**os.environ, "MALLOC_MMAP_THRESHOLD_": "65536"}
    out = subprocess.run(cmd, capture_output=True, text=True, check=True, env=env).stdout
    return json.loads(out.strip().splitlines()[-1])


# ---- nflows ------------------------------------------------------------------------------


def try_nflows():
    try:
        from nflows.nn.nde import MixtureOfGaussiansMADE
    except ImportError:
        return None
    return MixtureOfGaussiansMADE


# ---- the sections ------------------------------------------------------------------------


def bench_log_prob(models, data, timer, args) -> Dict[str, Any]:
    """Section 1: log_prob forward (no grad) and forward+backward of every model."""
    fwd = timer({k: log_prob_fns(m, data[k])[0] for k, m in models.items()}, args.repeats, args.device)
    fwd_bwd = timer({k: log_prob_fns(m, data[k])[1] for k, m in models.items()}, args.repeats, args.device)
    return {k: {"forward": fwd[k], "forward_backward": fwd_bwd[k]} for k in models}


def dense_mlp_fns(made: pyro_ar.MADE, x: torch.Tensor) -> Tuple[Callable, Callable]:
    """Forward and forward+backward of an unmasked MLP with MADE's shapes (no head, no distribution)."""
    cond = made.conditioner
    weights = [layer.weight.detach().clone().requires_grad_() for layer in cond.hidden_layers]
    biases = [layer.bias.detach().clone().requires_grad_() for layer in cond.hidden_layers]
    w_out = cond.output_layer.weight.detach().clone().requires_grad_()

    def dense():
        h = x
        for w, b in zip(weights, biases):
            h = torch.relu(F.linear(h, w, b))
        return F.linear(h, w_out)

    def forward():
        with torch.no_grad():
            return dense()

    def forward_backward():
        for t in [*weights, *biases, w_out]:
            t.grad = None
        dense().sum().backward()

    return forward, forward_backward


def bench_made_vs_dense(models, data, timer, args) -> Dict[str, Any]:
    """Section 2: MADE's log_prob against the dense MLP, and where its time goes.

    Timed in one interleaved run: the dense MLP alone (the issue's reference) and with the
    same Bernoulli log-likelihood; MADE's masked network alone; its head's log-likelihood
    alone; the support check of ``validate_args`` alone; log_prob with and without it.
    """
    out = {}
    for name in ("MADE", "MADE 2 layers"):
        made, x = models[name], data[name]
        dense_fwd, dense_fb = dense_mlp_fns(made, x)
        made_fwd, made_fb = log_prob_fns(made, x)
        encoded = made.conditional.encode(x, x.dtype)
        with torch.no_grad():
            params = made.conditioner(encoded)
        dist = made()

        def net_fwd(made=made, encoded=encoded):
            with torch.no_grad():
                return made.conditioner(encoded)

        def dense_bernoulli(x=x, dense_fwd=dense_fwd):
            with torch.no_grad():
                return -F.binary_cross_entropy_with_logits(dense_fwd(), x, reduction="none").sum(-1)

        def unvalidated(made=made, x=x):
            with torch.no_grad():
                d = made()
                d._validate_args = False
                return d.log_prob(x)

        def head(made=made, params=params, x=x):
            with torch.no_grad():
                return made.conditional.log_prob(params, x, 1.0)

        # Forward calls and forward+backward calls are timed in separate interleaved groups:
        # a call that follows a backward pass pays for its freed gradients (the allocator
        # hands the pages back and faults them in again), up to 0.5 ms here, whichever
        # function happens to come next in the round.
        t = timer({"made": made_fwd, "made_net": net_fwd, "dense": dense_fwd, "dense_bernoulli": dense_bernoulli,
                   "made_unvalidated": unvalidated, "head": head, "support_check": lambda d=dist, x=x: d.check_value(x)},
                  args.repeats, args.device)
        t.update(timer({"made_fb": made_fb, "dense_fb": dense_fb}, args.repeats, args.device))
        out[name] = {**t, "fraction_forward": t["dense"]["ms"] / t["made"]["ms"],
                     "fraction_forward_unvalidated": t["dense"]["ms"] / t["made_unvalidated"]["ms"],
                     "fraction_forward_vs_dense_bernoulli": t["dense_bernoulli"]["ms"] / t["made"]["ms"],
                     "fraction_conditioner_forward": t["dense"]["ms"] / t["made_net"]["ms"],
                     "fraction_forward_backward": t["dense_fb"]["ms"] / t["made_fb"]["ms"]}
    return out


def bench_nade(models, data, timer, args) -> Dict[str, Any]:
    """Section 3 and 4: NADE against the cumsum and loop versions, in time and memory."""
    nade, x = models["NADE"], data["NADE"]
    with torch.no_grad():  # the baselines compute the same numbers
        ref = nade().log_prob(x)
        for variant, fn in NADE_BASELINES.items():
            err = (fn(x, *nade_params(nade)) - ref).abs().max().item()
            if err > 1e-4 * max(1.0, ref.abs().max().item()):
                raise RuntimeError(f"NADE baseline {variant} disagrees with pyro_ar by {err}")
    variants = ("ours", "cumsum", "loop")
    losses = {v: nade_variant_fn(v, nade, x) for v in variants}

    def no_grad_call(fn):
        def call():
            with torch.no_grad():
                return fn()

        return call

    fwd = timer({v: no_grad_call(losses[v]) for v in variants}, args.repeats, args.device)
    fwd_bwd = timer({v: (lambda fn=losses[v]: fn().backward()) for v in variants}, max(3, args.repeats // 2),
                    args.device)
    saved = {v: saved_tensor_bytes(losses[v]) for v in variants}
    memory = {} if args.no_memory else {v: measure_memory(args, v) for v in variants}
    return {"forward": fwd, "forward_backward": fwd_bwd, "saved_bytes": saved, "peak_memory": memory}


def trained_models(args) -> Tuple[Dict[str, pyro_ar.AutoregressiveModel], str]:
    """FVSBN and MADE (d hidden units) trained for ``--train-epochs`` on binarized
    Fashion-MNIST, so that their variables are coupled as in real use; or why not."""
    if args.train_epochs == 0:
        return {}, "--train-epochs 0"
    if args.n != 784:
        return {}, f"needs n = 784 (Fashion-MNIST), got n = {args.n}"
    import bench_data

    try:
        data = bench_data.fashion_mnist_binary(max_train=5000 if args.quick else None)
    except (OSError, ValueError) as err:
        return {}, f"Fashion-MNIST not available ({err}); install the Debian package dataset-fashion-mnist"
    data = {k: v.to(args.device) for k, v in data.items()}
    torch.manual_seed(args.seed)
    models = {"FVSBN": pyro_ar.FVSBN(args.n), "MADE": pyro_ar.MADE(args.n, [args.d])}
    trained = {}
    for kind, model in models.items():
        model = model.to(args.device)
        # The one training loop; its validation only picks the kept epoch (no early stopping).
        train(model, data["train"], data["valid"], epochs=args.train_epochs, batch_size=100, lr=1e-3,
              patience=None, seed=args.seed, progress=False)
        trained[f"{kind}, trained {args.train_epochs} epochs on Fashion-MNIST"] = model
    return trained, ""


def fixed_point_rounds(model, batch: int) -> Optional[float]:
    """Mean fixed-point rounds per block in one sample (``None`` where blocks are not used:
    NADE, and continuous heads)."""
    state_class = type(model.conditioner.incremental(None, torch.Size([1])))
    if state_class.block_size == 1 or not model.conditional.is_discrete:
        return None
    calls, starts = [0], set()
    original = state_class.block_params

    def counting(state, start, guess):
        calls[0] += 1
        starts.add(start)
        return original(state, start, guess)

    state_class.block_params = counting
    try:
        model().sample((batch,))
    finally:
        state_class.block_params = original
    return calls[0] / len(starts)


def bench_sampling(models, data, timer, args) -> Dict[str, Any]:
    """Section 5: sampling against one log_prob pass and against naive sampling."""
    n, B, dev = args.n, args.batch, args.device
    out: Dict[str, Any] = {}
    models = dict(models)
    trained, why_not = trained_models(args)
    for name, model in trained.items():
        models[name], data = model, {**data, name: data[name.split(",")[0]]}
    if why_not:
        out["trained_skipped"] = why_not
    for name, model in models.items():
        log_prob, _ = log_prob_fns(model, data[name])
        t = timer({"log_prob": log_prob, "sample": lambda model=model: model().sample((B,))}, args.sample_repeats, dev)
        steps = min(args.naive_steps, n)
        naive = timer({"naive": lambda model=model: naive_sample(model, B, steps)}, 1, dev, warmup=0)
        naive_ms = naive["naive"]["ms"] * n / steps
        lp, sm = t["log_prob"]["ms"], t["sample"]["ms"]
        out[name] = {"log_prob_ms": lp, "sample_ms": sm, "naive_sample_ms": naive_ms, "naive_steps_timed": steps,
                     "sample_over_log_prob": sm / lp, "naive_over_log_prob": naive_ms / lp, "naive_over_ours": naive_ms / sm,
                     "rounds_per_block": fixed_point_rounds(model, B)}
    # The least any one-variable-per-step loop through torch.distributions costs: n draws.
    floor = timer({"floor": lambda: bernoulli_draws(n, B, dev)}, args.sample_repeats, dev)["floor"]["ms"]
    out["floor"] = {"sample_ms": floor, "over_fvsbn_log_prob": floor / out["FVSBN"]["log_prob_ms"]}
    return out


def bench_nflows(models, data, timer, args, sampling) -> Dict[str, Any]:
    """nflows' MixtureOfGaussiansMADE with our MoG-MADE's sizes: log_prob and sampling."""
    try:
        from nflows.nn.nde import MixtureOfGaussiansMADE
    except ImportError:
        return {"skipped": "nflows not importable: run benchmarks/nflows_env.sh and use its python"}
    if args.device != "cpu":
        return {"skipped": "nflows 0.14 MixtureOfGaussiansMADE.sample allocates on the CPU only"}
    n, B, d, k = args.n, args.batch, args.d, args.components
    torch.manual_seed(args.seed)
    # The weight shapes of ours (one masked layer of d units, no residual blocks; nflows
    # applies no activation after it, which costs nothing here). Its sample() needs a
    # context (it reads context.shape[0]), so it gets a 1-d zero context.
    config = dict(features=n, hidden_features=d, context_features=1, num_blocks=0, use_residual_blocks=False,
                  num_mixture_components=k)
    peer = MixtureOfGaussiansMADE(**config)
    x = data[mog_name(args)]
    ctx_rows, ctx_one = torch.zeros(B, 1), torch.zeros(1, 1)

    def log_prob():
        with torch.no_grad():
            return peer.log_prob(x, context=ctx_rows)

    ours, _ = log_prob_fns(models[mog_name(args)], x)
    t = timer({"log_prob": log_prob, "ours": ours}, args.repeats, args.device)  # interleaved: a fair ratio
    lp = t["log_prob"]["ms"]
    sm = timer({"sample": lambda: peer.sample(B, context=ctx_one)}, 1, args.device, warmup=0)["sample"]["ms"]
    return {"log_prob_ms": lp, "ours_log_prob_ms": t["ours"]["ms"], "nflows_over_ours_log_prob": lp / t["ours"]["ms"],
            "sample_ms": sm, "sample_over_log_prob": sm / lp,
            "nflows_over_ours_sample": sm / sampling[mog_name(args)]["sample_ms"],
            "config": "MixtureOfGaussiansMADE(" + ", ".join(f"{a}={b}" for a, b in config.items()) + ")"}


def mog_name(args) -> str:
    return f"MoG-MADE (K={args.components})"


def targets_of(result: Dict[str, Any]) -> Dict[str, bool]:
    nade, sampling = result["nade_vs_straightforward"], result["sampling"]
    targets = {
        "MADE log_prob >= 0.8 of a dense MLP": result["made_vs_dense"]["MADE"]["fraction_forward"] >= 0.8,
        "NADE log_prob >= 5x faster than cumsum": nade["forward"]["cumsum"]["ms"] >= 5 * nade["forward"]["ours"]["ms"],
        "NADE sampling <= 5x log_prob": sampling["NADE"]["sample_over_log_prob"] <= 5,
        "FVSBN sampling <= 5x log_prob": all(
            v["sample_over_log_prob"] <= 5 for k, v in sampling.items() if k.startswith("FVSBN")),
        "MADE sampling <= 50x log_prob": all(
            v["sample_over_log_prob"] <= 50 for k, v in sampling.items() if k.startswith("MADE")),
    }
    if nade["peak_memory"]:
        peak = {v: m["peak_bytes"] for v, m in nade["peak_memory"].items()}
        targets["NADE fwd+bwd peak memory <= cumsum's"] = peak["ours"] <= peak["cumsum"]
    return targets


def report(result: Dict[str, Any], args) -> str:
    """The markdown tables of a result."""
    ms = lambda t: t["ms"]  # noqa: E731
    lines = [f"## log_prob, batch of {args.batch} ({args.stat} of the repeats)"]
    lines.append(markdown_table(["model", "forward ms", "forward+backward ms"],
                                [[k, ms(v["forward"]), ms(v["forward_backward"])] for k, v in result["log_prob"].items()]))
    lines.append("\n## MADE against a dense MLP of the same shapes (fraction = dense time / MADE time)")
    lines.append(markdown_table(
        ["model", "dense fwd ms", "MADE net fwd ms", "MADE log_prob ms", "fraction (net)", "fraction (log_prob)",
         "dense fwd+bwd ms", "MADE fwd+bwd ms", "fraction (fwd+bwd)"],
        [[k, ms(t["dense"]), ms(t["made_net"]), ms(t["made"]), t["fraction_conditioner_forward"], t["fraction_forward"],
          ms(t["dense_fb"]), ms(t["made_fb"]), t["fraction_forward_backward"]] for k, t in result["made_vs_dense"].items()]))
    lines.append("\n## Where MADE's log_prob time goes (forward ms)")
    lines.append(markdown_table(
        ["model", "log_prob", "without validate_args", "masked net", "head log-likelihood", "support check",
         "dense + Bernoulli", "fraction (no validation)", "fraction vs dense + Bernoulli"],
        [[k, ms(t["made"]), ms(t["made_unvalidated"]), ms(t["made_net"]), ms(t["head"]), ms(t["support_check"]),
          ms(t["dense_bernoulli"]), t["fraction_forward_unvalidated"], t["fraction_forward_vs_dense_bernoulli"]]
         for k, t in result["made_vs_dense"].items()]))
    nade = result["nade_vs_straightforward"]
    lines.append("\n## NADE log_prob against straightforward implementations")
    rows = []
    for v in ("ours", "cumsum", "loop"):
        peak = nade["peak_memory"].get(v, {}).get("peak_bytes", float("nan"))
        f, fb = nade["forward"], nade["forward_backward"]
        rows.append([v, ms(f[v]), ms(f[v]) / ms(f["ours"]), ms(fb[v]), ms(fb[v]) / ms(fb["ours"]),
                     nade["saved_bytes"][v] / 2**20, peak / 2**20])
    lines.append(markdown_table(["implementation", "forward ms", "x ours", "fwd+bwd ms", "x ours",
                                 "saved for backward MiB", "peak fwd+bwd MiB"], rows))
    sampling, peer = result["sampling"], result["nflows"]
    lines.append(f"\n## Sampling a batch of {args.batch} (naive: the full network rerun n times, "
                 f"{min(args.naive_steps, args.n)} steps timed and scaled to n = {args.n})")
    nan = float("nan")
    rows = [[k, s["log_prob_ms"], s["sample_ms"], s["sample_over_log_prob"], s["naive_sample_ms"],
             s["naive_over_log_prob"], s["naive_over_ours"], nan if s["rounds_per_block"] is None else s["rounds_per_block"]]
            for k, s in sampling.items() if isinstance(s, dict) and "sample_ms" in s and k != "floor"]
    if "sample_ms" in peer:
        rows.append([f"nflows MoG-MADE (K={args.components})", peer["log_prob_ms"], peer["sample_ms"],
                     peer["sample_over_log_prob"], nan, nan, nan, nan])
    lines.append(markdown_table(["model", "log_prob ms", "sample ms", "sample / log_prob", "naive sample ms",
                                 "naive / log_prob", "naive / ours", "rounds per block"], rows))
    if "trained_skipped" in sampling:
        lines.append(f"\nTrained-model rows skipped: {sampling['trained_skipped']}")
    floor = sampling["floor"]
    lines.append(f"\nFloor of any loop that draws one variable per step through torch.distributions: {args.n} bare "
                 f"Bernoulli draws of {args.batch} rows take {floor['sample_ms']:.3g} ms = "
                 f"{floor['over_fvsbn_log_prob']:.3g}x FVSBN's log_prob.")
    if "skipped" in peer:
        lines.append(f"\nnflows rows skipped: {peer['skipped']}")
    else:
        lines.append(f"\nnflows' sampling takes {peer['nflows_over_ours_sample']:.3g}x as long as ours "
                     f"({mog_name(args)}, same layer sizes); its log_prob {peer['nflows_over_ours_log_prob']:.3g}x "
                     f"as long ({peer['log_prob_ms']:.3g} ms against {peer['ours_log_prob_ms']:.3g} ms, interleaved).")
    lines.append("\n## Targets")
    lines += [f"- {k}: {'met' if ok else 'MISSED'}" for k, ok in result["targets"].items()]
    return "\n".join(lines)


# ---- the run -----------------------------------------------------------------------------


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--n", type=int, default=784, help="variables (default 784)")
    parser.add_argument("--d", type=int, default=500, help="hidden units (default 500)")
    parser.add_argument("--batch", type=int, default=100, help="batch size (default 100)")
    parser.add_argument("--components", type=int, default=5, help="mixture components of MoG-MADE (default 5)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats of fast calls (default 7)")
    parser.add_argument("--sample-repeats", type=int, default=7, help="timed repeats of sampling (default 7)")
    parser.add_argument("--naive-steps", type=int, default=16, help="steps of naive sampling timed, scaled to n")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory section")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat: a smoke test")
    parser.add_argument("--stat", default="min", choices=["min", "median"],
                        help="statistic of the repeated wall times (default min: best of N)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train-epochs", type=int, default=2,
                        help="epochs of Fashion-MNIST training for the trained FVSBN and MADE sampling rows (0: skip)")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default results/speed_<device>.json)")
    parser.add_argument("--memory-probe", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.memory_probe:
        return memory_probe(args)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for but torch.cuda.is_available() is False")
    if args.quick:
        args.n, args.d, args.batch, args.repeats, args.sample_repeats, args.naive_steps = 64, 32, 16, 1, 1, 4
    timer = functools.partial(time_interleaved, stat=args.stat)
    started = time.perf_counter()
    info = machine_info(args.device)
    print(f"# pyro_ar speed, n={args.n}, d={args.d}, batch={args.batch}, device={args.device}")
    print(f"{info['cpu']}, {info['logical_cores']} logical cores, torch {info['torch']} with "
          f"{info['torch_threads']} threads" + (f", {info['gpu']}" if "gpu" in info else "")
          + f"; load average {info.get('load_average_1_5_15min')}\n", flush=True)

    models = build_models(args.n, args.d, args.components, args.device, args.seed)
    data = {k: data_for(m, args.batch, args.device) for k, m in models.items()}
    result: Dict[str, Any] = {"date": now_iso(), "command": command_line(), "machine": info,
                              "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()}}
    result["log_prob"] = bench_log_prob(models, data, timer, args)
    result["made_vs_dense"] = bench_made_vs_dense(models, data, timer, args)
    result["nade_vs_straightforward"] = bench_nade(models, data, timer, args)
    result["sampling"] = bench_sampling(models, data, timer, args)
    result["nflows"] = bench_nflows(models, data, timer, args, result["sampling"])
    result["targets"] = targets_of(result)
    result["machine"]["load_average_at_end"] = machine_info(args.device).get("load_average_1_5_15min")
    result["wall_seconds"] = time.perf_counter() - started
    print(report(result, args))
    out = args.out or RESULTS_DIR / f"speed_{args.device.split(':')[0]}{'_quick' if args.quick else ''}.json"
    write_json(out, result)
    print(f"\nwrote {out} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
