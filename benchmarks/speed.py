"""Speed of pyro_ar's log_prob and sampling, as ratios measured in one run.

Sections (n = 784 variables, d = 500 hidden units, batch 100 by default):

1. log_prob forward (no grad) and forward+backward of FVSBN, NADE, MADE (Bernoulli heads)
   and a MoG-MADE (mixture of Gaussians head).
2. MADE as a fraction of a dense MLP of the same shapes: the same matmuls with no masks,
   no head, no distribution object (the hardware limit).
3. NADE against two straightforward implementations: a cumulative sum over the full
   (B, n, d) tensor, and a Python loop over the n positions.
4. Peak memory of NADE's log_prob forward+backward, ours against both (CPU: peak resident
   memory of a fresh process; CUDA: ``torch.cuda.max_memory_allocated``), and the bytes
   autograd saves for the backward pass.
5. Sampling time divided by one log_prob pass, for each model, against naive sampling that
   reruns the full network once per variable (timed over ``--naive-steps`` steps and scaled
   to n), and against nflows' ``MixtureOfGaussiansMADE`` sampling when nflows is importable.

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

from bench_utils import RESULTS_DIR, command_line, machine_info, markdown_table, now_iso, synchronize, time_interleaved, write_json

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


def log_prob_fns(model, x) -> Tuple[Callable, Callable]:
    def forward():
        with torch.no_grad():
            return model().log_prob(x)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        model().log_prob(x).sum().backward()

    return forward, forward_backward


def naive_sample(model, batch: int, steps: int) -> torch.Tensor:
    """The first ``steps`` variables of a sample drawn by rerunning the full network each step."""
    cond, head = model.conditioner, model.conditional
    dtype = next(model.parameters()).dtype
    device = next(model.parameters()).device
    x = torch.zeros(batch, model.event_size, dtype=head.sample_dtype(dtype), device=device)
    with torch.no_grad():
        for i in cond.orders[0].tolist()[:steps]:
            params = cond(head.encode(x, dtype))  # all n conditionals, of which one is used
            x[:, i] = head.sample(params[:, i])
    return x


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


# ---- the run -----------------------------------------------------------------------------


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--n", type=int, default=784, help="variables (default 784)")
    parser.add_argument("--d", type=int, default=500, help="hidden units (default 500)")
    parser.add_argument("--batch", type=int, default=100, help="batch size (default 100)")
    parser.add_argument("--components", type=int, default=5, help="mixture components of MoG-MADE (default 5)")
    parser.add_argument("--repeats", type=int, default=7, help="timed repeats of fast calls (default 7)")
    parser.add_argument("--sample-repeats", type=int, default=3, help="timed repeats of sampling (default 3)")
    parser.add_argument("--naive-steps", type=int, default=16, help="steps of naive sampling timed, scaled to n")
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory section")
    parser.add_argument("--quick", action="store_true", help="tiny sizes, one repeat: a smoke test")
    parser.add_argument("--stat", default="min", choices=["min", "median"],
                        help="statistic of the repeated wall times (default min: best of N)")
    parser.add_argument("--seed", type=int, default=0)
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
    dev, n, B = args.device, args.n, args.batch
    timer = functools.partial(time_interleaved, stat=args.stat)
    started = time.perf_counter()
    info = machine_info(dev)
    result: Dict[str, Any] = {"date": now_iso(), "command": command_line(), "machine": info,
                              "sizes": {"n": n, "d": args.d, "batch": B, "components": args.components}}
    print(f"# pyro_ar speed, n={n}, d={args.d}, batch={B}, device={dev}")
    print(f"{info['cpu']}, {info['logical_cores']} logical cores, torch {info['torch']} with "
          f"{info['torch_threads']} threads" + (f", {info['gpu']}" if "gpu" in info else "")
          + f"; load average {info.get('load_average_1_5_15min')}\n")

    models = build_models(n, args.d, args.components, dev, args.seed)
    data = {k: data_for(m, B, dev) for k, m in models.items()}

    # 1. log_prob forward and forward+backward ------------------------------------------
    fwd = timer({k: log_prob_fns(m, data[k])[0] for k, m in models.items()}, args.repeats, dev)
    fwd_bwd = timer({k: log_prob_fns(m, data[k])[1] for k, m in models.items()}, args.repeats, dev)
    result["log_prob"] = {k: {"forward": fwd[k], "forward_backward": fwd_bwd[k]} for k in models}

    # 2. MADE against a dense MLP of the same shapes ------------------------------------
    dense_rows, result["made_vs_dense"] = [], {}
    for name in ("MADE", "MADE 2 layers"):
        made = models[name]
        weights = [layer.weight.detach().clone() for layer in made.conditioner.hidden_layers]
        biases = [layer.bias.detach().clone() for layer in made.conditioner.hidden_layers]
        w_out = made.conditioner.output_layer.weight.detach().clone()
        leaves = [t.requires_grad_() for t in [*weights, *biases, w_out]]
        x = data[name]

        def dense(x=x, weights=weights, biases=biases, w_out=w_out):
            h = x
            for w, b in zip(weights, biases):
                h = torch.relu(F.linear(h, w, b))
            return F.linear(h, w_out)

        def dense_fwd(dense=dense):
            with torch.no_grad():
                return dense()

        def dense_fwd_bwd(dense=dense, leaves=leaves):
            for t in leaves:
                t.grad = None
            dense().sum().backward()

        made_fwd, made_fwd_bwd = log_prob_fns(made, x)

        def conditioner_fwd(made=made, x=x):
            with torch.no_grad():
                return made.conditioner(made.conditional.encode(x, torch.float32))

        t = timer({"made": made_fwd, "made_net": conditioner_fwd, "dense": dense_fwd,
                              "made_fb": made_fwd_bwd, "dense_fb": dense_fwd_bwd}, args.repeats, dev)
        frac = t["dense"]["ms"] / t["made"]["ms"]
        frac_net = t["dense"]["ms"] / t["made_net"]["ms"]
        frac_fb = t["dense_fb"]["ms"] / t["made_fb"]["ms"]
        result["made_vs_dense"][name] = {**t, "fraction_forward": frac, "fraction_conditioner_forward": frac_net,
                                         "fraction_forward_backward": frac_fb}
        dense_rows.append([name, t["dense"]["ms"], t["made_net"]["ms"], t["made"]["ms"], frac_net,
                           frac, t["dense_fb"]["ms"], t["made_fb"]["ms"], frac_fb])

    # 3. NADE against straightforward implementations -------------------------------------
    nade = models["NADE"]
    x = data["NADE"]
    with torch.no_grad():
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

    def fb_call(fn):
        return lambda: fn().backward()

    nade_fwd = timer({v: no_grad_call(losses[v]) for v in variants}, args.repeats, dev)
    nade_fb = timer({v: fb_call(losses[v]) for v in variants}, max(3, args.repeats // 2), dev)
    saved = {v: saved_tensor_bytes(losses[v]) for v in variants}
    memory: Dict[str, Any] = {}
    if not args.no_memory:
        memory = {v: measure_memory(args, v) for v in variants}
    result["nade_vs_straightforward"] = {"forward": nade_fwd, "forward_backward": nade_fb, "saved_bytes": saved,
                                         "peak_memory": memory}

    # 5. sampling ----------------------------------------------------------------------------
    sampling = {}
    for name, model in models.items():
        lp, _ = log_prob_fns(model, data[name])
        t = timer({"log_prob": lp, "sample": lambda model=model: model().sample((B,))},
                             args.sample_repeats, dev)
        steps = min(args.naive_steps, n)
        naive = timer({"naive": lambda model=model: naive_sample(model, B, steps)}, 1, dev, warmup=0)
        naive_ms = naive["naive"]["ms"] * n / steps
        sampling[name] = {"log_prob_ms": t["log_prob"]["ms"], "sample_ms": t["sample"]["ms"],
                          "naive_sample_ms": naive_ms, "naive_steps_timed": steps,
                          "sample_over_log_prob": t["sample"]["ms"] / t["log_prob"]["ms"],
                          "naive_over_log_prob": naive_ms / t["log_prob"]["ms"],
                          "naive_over_ours": naive_ms / t["sample"]["ms"]}
    # The least any one-variable-per-step loop through torch.distributions costs: n draws.
    floor = timer({"floor": lambda: bernoulli_draws(n, B, dev)}, args.sample_repeats, dev)["floor"]["ms"]
    sampling["floor: n Bernoulli draws"] = {"sample_ms": floor,
                                           "over_fvsbn_log_prob": floor / sampling["FVSBN"]["log_prob_ms"]}
    result["sampling"] = sampling

    nflows_cls = try_nflows()
    nflows_result: Dict[str, Any] = {}
    mog_name = f"MoG-MADE (K={args.components})"
    if nflows_cls is None:
        nflows_result["skipped"] = "nflows not importable: run benchmarks/nflows_env.sh and use its python"
    elif dev != "cpu":
        nflows_result["skipped"] = "nflows 0.14 MixtureOfGaussiansMADE.sample allocates on the CPU only"
    else:
        torch.manual_seed(args.seed)
        # Same shapes as ours: one masked hidden layer of d units (no residual blocks). Its
        # sample() needs a context (it reads context.shape[0]), so it gets a 1-d zero context.
        peer = nflows_cls(features=n, hidden_features=args.d, context_features=1, num_blocks=0,
                          use_residual_blocks=False, num_mixture_components=args.components)
        xm = data[mog_name]
        ctx_rows, ctx_one = torch.zeros(B, 1), torch.zeros(1, 1)

        def peer_log_prob():
            with torch.no_grad():
                return peer.log_prob(xm, context=ctx_rows)

        peer_t = timer({"log_prob": peer_log_prob}, args.repeats, dev)
        peer_s = timer({"sample": lambda: peer.sample(B, context=ctx_one)}, 1, dev, warmup=0)
        nflows_result = {"log_prob_ms": peer_t["log_prob"]["ms"], "sample_ms": peer_s["sample"]["ms"],
                         "sample_over_log_prob": peer_s["sample"]["ms"] / peer_t["log_prob"]["ms"],
                         "nflows_over_ours_sample": peer_s["sample"]["ms"] / sampling[mog_name]["sample_ms"],
                         "config": f"MixtureOfGaussiansMADE(features={n}, hidden_features={args.d}, context_features=1, "
                                   f"num_blocks=0, use_residual_blocks=False, num_mixture_components={args.components})"}
    result["nflows"] = nflows_result

    # ---- report ------------------------------------------------------------------------------
    print("## log_prob, batch of", B)
    print(markdown_table(["model", "forward ms", "forward+backward ms"],
                         [[k, fwd[k]["ms"], fwd_bwd[k]["ms"]] for k in models]))
    print("\n## MADE against a dense MLP of the same shapes (fraction = dense time / MADE time)")
    print(markdown_table(["model", "dense fwd ms", "MADE net fwd ms", "MADE log_prob ms", "fraction (net)",
                          "fraction (log_prob)", "dense fwd+bwd ms", "MADE fwd+bwd ms", "fraction (fwd+bwd)"], dense_rows))
    print("\n## NADE log_prob against straightforward implementations")
    rows = []
    for v in variants:
        mem = memory.get(v, {}).get("peak_bytes", float("nan"))
        rows.append([v, nade_fwd[v]["ms"], nade_fwd[v]["ms"] / nade_fwd["ours"]["ms"],
                     nade_fb[v]["ms"], nade_fb[v]["ms"] / nade_fb["ours"]["ms"],
                     saved[v] / 2**20, mem / 2**20])
    print(markdown_table(["implementation", "forward ms", "x ours", "fwd+bwd ms", "x ours", "saved for backward MiB",
                          "peak fwd+bwd MiB"], rows))
    print("\n## Sampling a batch of", B, f"(naive: the full network rerun n times, {min(args.naive_steps, n)} steps timed)")
    rows = [[k, s["log_prob_ms"], s["sample_ms"], s["sample_over_log_prob"], s["naive_sample_ms"],
             s["naive_over_log_prob"], s["naive_over_ours"]] for k, s in sampling.items() if "log_prob_ms" in s]
    if "sample_ms" in nflows_result:
        rows.append([f"nflows MoG-MADE (K={args.components})", nflows_result["log_prob_ms"], nflows_result["sample_ms"],
                     nflows_result["sample_over_log_prob"], float("nan"), float("nan"), float("nan")])
    print(markdown_table(["model", "log_prob ms", "sample ms", "sample / log_prob", "naive sample ms",
                          "naive / log_prob", "naive / ours"], rows))
    fl = sampling["floor: n Bernoulli draws"]
    print(f"\nFloor of any loop drawing one variable per step through torch.distributions: {n} bare Bernoulli "
          f"draws of {B} rows take {fl['sample_ms']:.3g} ms = {fl['over_fvsbn_log_prob']:.3g}x FVSBN's log_prob.")
    if "skipped" in nflows_result:
        print(f"\nnflows rows skipped: {nflows_result['skipped']}")
    else:
        print(f"\nnflows sampling takes {nflows_result['nflows_over_ours_sample']:.1f}x as long as ours ({mog_name}).")

    targets = {
        "MADE log_prob >= 0.5 of dense matmul throughput": result["made_vs_dense"]["MADE"]["fraction_forward"] >= 0.5,
        "NADE log_prob >= 5x faster than cumsum": nade_fwd["cumsum"]["ms"] >= 5 * nade_fwd["ours"]["ms"],
        "NADE sampling <= 5x log_prob": sampling["NADE"]["sample_over_log_prob"] <= 5,
        "FVSBN sampling <= 5x log_prob": sampling["FVSBN"]["sample_over_log_prob"] <= 5,
        "MADE sampling <= 50x log_prob": sampling["MADE"]["sample_over_log_prob"] <= 50,
    }
    if memory:
        targets["NADE fwd+bwd peak memory <= cumsum's"] = memory["ours"]["peak_bytes"] <= memory["cumsum"]["peak_bytes"]
    result["targets"] = targets
    print("\n## Targets")
    for k, ok in targets.items():
        print(f"- {k}: {'met' if ok else 'MISSED'}")
    result["machine"]["load_average_at_end"] = machine_info(dev).get("load_average_1_5_15min")
    result["wall_seconds"] = time.perf_counter() - started
    out = args.out or RESULTS_DIR / f"speed_{dev.split(':')[0]}{'_quick' if args.quick else ''}.json"
    write_json(out, result)
    print(f"\nwrote {out} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
