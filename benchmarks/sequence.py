"""Speed of the sequence conditioners (RNN, Transformer) against MADE, as ratios in one run.

For each size n (784 and 64 by default; Bernoulli heads, batch 100, one thread):

1. log_prob forward (no grad) and forward+backward of ``pyro_ar.RNN`` (GRU, H = 128),
   ``pyro_ar.Transformer`` (D = 64, 4 heads, 2 layers) and ``pyro_ar.MADE(n, [500])``, and
   each one's time over MADE's (timed interleaved).
2. Sampling a batch, ``d.sample((B,))``, over one log_prob pass of the same batch (timed
   interleaved). Targets: RNN at most 5x, Transformer at most 10x.
3. That sampler (recurrent state / key-value cache) against a naive one that reruns the full
   conditioner pass on the partially drawn x once per variable and keeps the row of the step
   it draws (``--naive-steps`` steps timed and scaled to n, as in ``speed.py``). Target: the
   Transformer's cache at least 20x faster than the naive sampler (reported for the RNN too).

Usage (from the repository root)::

    python benchmarks/sequence.py                 # -> results/sequence.json
    python benchmarks/sequence.py --quick         # n = 64 and 16, batch 8: a smoke test

Prints markdown tables and writes a JSON file with the machine, date and command.
"""

from __future__ import annotations

import argparse
import functools
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

import pyro_ar

from bench_utils import (
    RESULTS_DIR, command_line, log_prob_fns, machine_info, markdown_table, naive_sample, now_iso, time_interleaved,
    write_json,
)

MODELS = ("MADE", "RNN", "Transformer")
#: Sampling time over one log_prob pass, at most (issue 14).
SAMPLE_TARGETS = {"RNN": 5.0, "Transformer": 10.0}
#: Naive sampling time over the cached sampler's, at least (issue 14).
CACHE_TARGETS = {"Transformer": 20.0}


def build_models(n: int, args: argparse.Namespace) -> Dict[str, pyro_ar.AutoregressiveModel]:
    torch.manual_seed(args.seed)
    models = {
        "MADE": pyro_ar.MADE(n, [args.made_hidden]),
        "RNN": pyro_ar.RNN(n, hidden_size=args.hidden_size, num_layers=args.rnn_layers, cell=args.cell),
        "Transformer": pyro_ar.Transformer(n, d_model=args.d_model, num_heads=args.num_heads,
                                           num_layers=args.transformer_layers),
    }
    return {k: m.to(args.device).eval() for k, m in models.items()}


def bernoulli_data(n: int, batch: int, device: str) -> torch.Tensor:
    gen = torch.Generator().manual_seed(1)
    return torch.bernoulli(torch.full((batch, n), 0.3), generator=gen).to(device)


def bench_log_prob(models, x, timer, args) -> Dict[str, Any]:
    """Section 1: forward and forward+backward, each model interleaved with the others."""
    fwd = timer({k: log_prob_fns(m, x)[0] for k, m in models.items()}, args.repeats, args.device)
    fwd_bwd = timer({k: log_prob_fns(m, x)[1] for k, m in models.items()}, args.repeats, args.device)
    return {
        k: {"forward": fwd[k], "forward_backward": fwd_bwd[k],
            "forward_over_made": fwd[k]["ms"] / fwd["MADE"]["ms"],
            "forward_backward_over_made": fwd_bwd[k]["ms"] / fwd_bwd["MADE"]["ms"]}
        for k in models
    }


def bench_sampling(models, x, timer, args) -> Dict[str, Any]:
    """Sections 2 and 3: sampling over one log_prob pass, and the naive sampler over ours."""
    n, B, dev = x.shape[-1], x.shape[0], args.device
    out = {}
    for name, model in models.items():
        log_prob, _ = log_prob_fns(model, x)
        t = timer({"log_prob": log_prob, "sample": lambda model=model: model().sample((B,))}, args.sample_repeats, dev)
        steps = min(args.naive_steps, n)
        naive = timer({"naive": lambda model=model: naive_sample(model, B, steps)}, 1, dev, warmup=0)
        naive_ms = naive["naive"]["ms"] * n / steps
        lp, sm = t["log_prob"]["ms"], t["sample"]["ms"]
        out[name] = {"log_prob_ms": lp, "sample_ms": sm, "naive_sample_ms": naive_ms, "naive_steps_timed": steps,
                     "sample_over_log_prob": sm / lp, "naive_over_log_prob": naive_ms / lp,
                     "naive_over_ours": naive_ms / sm}
    return out


def targets_of(sizes: Dict[str, Dict[str, Any]]) -> Dict[str, bool]:
    targets = {}
    for n, result in sizes.items():
        sampling = result["sampling"]
        for name, limit in SAMPLE_TARGETS.items():
            targets[f"{name} sampling <= {limit:g}x log_prob (n = {n})"] = sampling[name]["sample_over_log_prob"] <= limit
        for name, least in CACHE_TARGETS.items():
            targets[f"{name} cached sampling >= {least:g}x faster than naive (n = {n})"] = (
                sampling[name]["naive_over_ours"] >= least)
    return targets


def report(result: Dict[str, Any], args) -> str:
    """The markdown tables of a result."""
    lines = []
    for n, size in result["sizes"].items():
        lp, sampling = size["log_prob"], size["sampling"]
        lines.append(f"## n = {n}, batch {args.batch}: log_prob ({args.stat} of {args.repeats} repeats)")
        lines.append(markdown_table(
            ["model", "forward ms", "x MADE", "forward+backward ms", "x MADE"],
            [[k, v["forward"]["ms"], v["forward_over_made"], v["forward_backward"]["ms"], v["forward_backward_over_made"]]
             for k, v in lp.items()]))
        lines.append(f"\n## n = {n}, batch {args.batch}: sampling (naive: the full pass rerun per variable, "
                     f"{sampling['RNN']['naive_steps_timed']} steps timed and scaled to n)")
        rows = []
        for k, s in sampling.items():
            limit, least = SAMPLE_TARGETS.get(k), CACHE_TARGETS.get(k)
            rows.append([k, s["log_prob_ms"], s["sample_ms"], s["sample_over_log_prob"],
                         "-" if limit is None else f"<= {limit:g}: {'met' if s['sample_over_log_prob'] <= limit else 'not met'}",
                         s["naive_sample_ms"], s["naive_over_ours"],
                         "-" if least is None else f">= {least:g}: {'met' if s['naive_over_ours'] >= least else 'not met'}"])
        lines.append(markdown_table(["model", "log_prob ms", "sample ms", "sample / log_prob", "target",
                                     "naive sample ms", "naive / ours", "target"], rows))
        lines.append("")
    lines.append("## Targets")
    lines += [f"- {k}: {'met' if ok else 'not met'}" for k, ok in result["targets"].items()]
    return "\n".join(lines)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default cpu)")
    parser.add_argument("--sizes", default="784,64", help="comma-separated n values (default 784,64)")
    parser.add_argument("--batch", type=int, default=100, help="batch size (default 100)")
    parser.add_argument("--made-hidden", type=int, default=500, help="MADE's hidden units (default 500)")
    parser.add_argument("--hidden-size", type=int, default=128, help="RNN hidden size (default 128)")
    parser.add_argument("--rnn-layers", type=int, default=1, help="RNN layers (default 1)")
    parser.add_argument("--cell", default="gru", choices=["tanh", "gru", "lstm"], help="RNN cell (default gru)")
    parser.add_argument("--d-model", type=int, default=64, help="Transformer width (default 64)")
    parser.add_argument("--num-heads", type=int, default=4, help="Transformer heads (default 4)")
    parser.add_argument("--transformer-layers", type=int, default=2, help="Transformer blocks (default 2)")
    parser.add_argument("--repeats", type=int, default=5, help="timed repeats of log_prob (default 5)")
    parser.add_argument("--sample-repeats", type=int, default=3, help="timed repeats of sampling (default 3)")
    parser.add_argument("--naive-steps", type=int, default=4, help="steps of naive sampling timed, scaled to n")
    parser.add_argument("--threads", type=int, default=1, help="torch threads (default 1)")
    parser.add_argument("--quick", action="store_true", help="n = 64 and 16, batch 8, one repeat: a smoke test")
    parser.add_argument("--stat", default="min", choices=["min", "median"],
                        help="statistic of the repeated wall times (default min: best of N)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default results/sequence.json)")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise SystemExit("--device cuda was asked for but torch.cuda.is_available() is False")
    if args.quick:
        args.sizes, args.batch, args.repeats, args.sample_repeats, args.naive_steps = "64,16", 8, 1, 1, 4
    sizes = [int(v) for v in args.sizes.split(",")]
    timer = functools.partial(time_interleaved, stat=args.stat)
    started = time.perf_counter()
    info = machine_info(args.device)
    print(f"# pyro_ar sequence models speed, n in {sizes}, batch={args.batch}, device={args.device}")
    print(f"{info['cpu']}, {info['logical_cores']} logical cores, torch {info['torch']} with "
          f"{info['torch_threads']} threads" + (f", {info['gpu']}" if "gpu" in info else "")
          + f"; load average {info.get('load_average_1_5_15min')}\n", flush=True)
    result: Dict[str, Any] = {"date": now_iso(), "command": command_line(), "machine": info,
                              "settings": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
                              "sizes": {}}
    for n in sizes:
        models = build_models(n, args)
        x = bernoulli_data(n, args.batch, args.device)
        size: Dict[str, Any] = {"parameters": {k: sum(p.numel() for p in m.parameters()) for k, m in models.items()}}
        size["log_prob"] = bench_log_prob(models, x, timer, args)
        size["sampling"] = bench_sampling(models, x, timer, args)
        result["sizes"][str(n)] = size
        print(f"n = {n} done ({time.perf_counter() - started:.0f} s)", flush=True)
    result["targets"] = targets_of(result["sizes"])
    result["machine"]["load_average_at_end"] = machine_info(args.device).get("load_average_1_5_15min")
    result["wall_seconds"] = time.perf_counter() - started
    print(report(result, args))
    out = args.out or RESULTS_DIR / f"sequence{'_quick' if args.quick else ''}.json"
    write_json(out, result)
    print(f"\nwrote {out} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
