"""PixelCNN benchmarks: cached sampling against one log_prob pass, and test NLL targets.

Parts (``--parts speed,digits,fashion``):

* ``speed``: 28x28 binary images, batch 100, one thread: the time of one ``log_prob`` pass,
  of a full sample with the per-layer caches (target: at most 50x the pass) and of the naive
  sampler, which reruns the network once per pixel (784 passes; its time is measured over
  ``--naive-steps`` steps and scaled to 784).
* ``digits``: the binarized 8x8 digits, test NLL (target: at most 16.5 nats).
* ``fashion``: binarized Fashion-MNIST (target: at most 100 nats within ``--minutes 30`` of
  training on the 2-core CPU): training stops once the budget is spent (``train``'s
  ``max_seconds``; the epoch under way ends early and is validated).

Every run states its budget and writes ``results/pixelcnn.json`` (or ``--out``).
``--quick`` is a smoke run (small sizes, a few steps) for ``tests/test_benchmarks.py``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any, Dict

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import pyro_ar  # noqa: E402
from bench_data import digits, fashion_mnist_binary  # noqa: E402
from bench_utils import RESULTS_DIR, command_line, machine_info, markdown_table, now_iso, write_json  # noqa: E402
from pyro_ar.program.training import evaluate_nll, train  # noqa: E402

SPEED_TARGET = 50.0


def _time(fn, repeats: int) -> float:
    fn()  # warm-up
    start = time.perf_counter()
    for _ in range(repeats):
        fn()
    return (time.perf_counter() - start) / repeats


def naive_sample(d, steps: int) -> float:
    """Seconds per step of the naive sampler: one full network pass per variable."""
    head, cond = d.conditional, d.conditioner
    n = d.event_shape[0]
    x = torch.zeros(d.batch_shape + (n,))
    noise = head.draw_noise(d.batch_shape + (n,), torch.float32, torch.device("cpu"))
    start = time.perf_counter()
    for step, i in enumerate(d.order.tolist()[:steps]):
        params = cond(head.encode(x, torch.float32), d.context)[..., i, :]
        x[..., i] = head.sample_from_noise(params, noise[..., step, :])
    return (time.perf_counter() - start) / steps


def speed(args) -> Dict[str, Any]:
    size, batch = (8, args.batch) if args.quick else (28, args.batch)
    rows = []
    for gated in (True, False):
        torch.manual_seed(0)
        net = pyro_ar.PixelCNN((size, size), channels=args.channels, num_layers=args.num_layers,
                               kernel_size=args.kernel_size, gated=gated)
        d = net().expand((batch,))
        x = (torch.rand(batch, size * size) < 0.3).float()
        with torch.no_grad():
            log_prob = _time(lambda: d.log_prob(x), 1 if args.quick else 3)
            sample = _time(lambda: d.sample(), 1)
            naive = naive_sample(d, 4 if args.quick else args.naive_steps) * size * size
        rows.append({
            "model": "gated" if gated else "plain", "image": f"{size}x{size}", "batch": batch,
            "log_prob_ms": 1000 * log_prob, "cached_sample_ms": 1000 * sample, "naive_sample_ms": 1000 * naive,
            "cached_over_log_prob": sample / log_prob, "naive_over_log_prob": naive / log_prob,
            "naive_over_cached": naive / sample,
        })
    return {"rows": rows, "target": f"cached sample <= {SPEED_TARGET:g}x one log_prob pass (28x28, batch 100)",
            "met": all(r["cached_over_log_prob"] <= SPEED_TARGET for r in rows)}


def likelihood(name: str, splits, args, minutes: float, target: float, shape) -> Dict[str, Any]:
    torch.manual_seed(args.seed)
    net = pyro_ar.PixelCNN(shape, channels=args.channels, num_layers=args.num_layers,
                           kernel_size=args.kernel_size, dropout=args.dropout)
    common = dict(batch_size=args.batch_size, lr=args.lr, seed=args.seed, progress=False, patience=args.patience,
                  weight_decay=args.weight_decay, lr_decay=args.lr_decay)
    max_seconds = None if minutes is None else 60 * minutes
    history = train(net, splits["train"], splits["valid"], epochs=args.epochs, max_seconds=max_seconds, **common)
    test = evaluate_nll(net, splits["test"])
    return {
        "data": name,
        "model": f"PixelCNN gated {args.channels}ch x {args.num_layers} layers, k={args.kernel_size}, "
                 f"dropout {args.dropout:g}, lr {args.lr:g}, lr decay {args.lr_decay:g}/epoch, "
                 f"weight decay {args.weight_decay:g}",
        "parameters": sum(p.numel() for p in net.parameters()), "test_nll": test,
        "test_bits_per_dim": test / (math.prod(shape) * math.log(2)),
        "best_valid_nll": history.best_valid_nll, "valid_nll": history.valid_nll, "train_loss": history.train_loss,
        "best_epoch": history.best_epoch, "epochs_run": history.epochs_run, "steps": history.steps,
        "out_of_time": history.out_of_time, "train_seconds": history.seconds,
        "budget_minutes": minutes, "target": target, "met": test <= target,
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--parts", default="speed,digits", help="comma-separated: speed, digits, fashion")
    parser.add_argument("--quick", action="store_true", help="a smoke run: tiny sizes, a few steps")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--channels", type=int, default=32)
    parser.add_argument("--num-layers", type=int, default=5)
    parser.add_argument("--kernel-size", type=int, default=5)
    parser.add_argument("--batch", type=int, default=100, help="batch of the speed part")
    parser.add_argument("--naive-steps", type=int, default=20, help="naive sampler steps timed (then scaled)")
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--patience", type=int, default=30)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--lr", type=float, default=3e-3)
    parser.add_argument("--weight-decay", type=float, default=0.0, help="Adam's L2 penalty")
    parser.add_argument("--dropout", type=float, default=0.0, help="PixelCNN's dropout in training")
    parser.add_argument("--lr-decay", type=float, default=1.0, help="learning-rate factor per epoch (smooth)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--minutes", type=float, default=30.0, help="training budget of the fashion part")
    parser.add_argument("--fashion-max-train", type=int, help="use only this many training rows (short runs)")
    parser.add_argument("--out", type=Path, default=RESULTS_DIR / "pixelcnn.json")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    parts = [p for p in args.parts.split(",") if p]
    if args.quick:
        args.channels, args.num_layers, args.kernel_size, args.epochs, args.batch = 4, 2, 3, 2, 10
    result: Dict[str, Any] = {"date": now_iso(), "command": command_line(), "machine": machine_info(),
                              "settings": {k: str(v) for k, v in vars(args).items()}}
    start = time.perf_counter()
    if "speed" in parts:
        result["speed"] = speed(args)
        print("## Sampling (one thread)\n")
        header = ["model", "image", "batch", "log_prob ms", "cached sample ms", "naive sample ms", "cached / log_prob",
                  "naive / log_prob"]
        print(markdown_table(header, [[r["model"], r["image"], r["batch"], r["log_prob_ms"], r["cached_sample_ms"],
                                       r["naive_sample_ms"], r["cached_over_log_prob"], r["naive_over_log_prob"]]
                                      for r in result["speed"]["rows"]]))
    rows = []
    if "digits" in parts:
        splits = digits("bernoulli")
        if args.quick:
            splits = {k: v[:100] for k, v in splits.items()}
        rows.append(likelihood("digits 8x8, binarized", splits, args, None, 16.5, (8, 8)))
    if "fashion" in parts:
        max_train = 200 if args.quick else args.fashion_max_train
        splits = fashion_mnist_binary(max_train=max_train)
        minutes = 0.2 if args.quick else args.minutes
        rows.append(likelihood("Fashion-MNIST 28x28, binarized", splits, args, minutes, 100.0, (28, 28)))
    if rows:
        result["likelihood"] = rows
        print("\n## Test NLL (nats)\n")
        header = ["data", "model", "params", "test NLL", "bits/dim", "target", "met", "epochs", "train s", "budget min"]
        print(markdown_table(header, [[r["data"], r["model"], r["parameters"], r["test_nll"], r["test_bits_per_dim"],
                                       r["target"], r["met"], f"{r['best_epoch']}/{r['epochs_run']}",
                                       r["train_seconds"], r["budget_minutes"]] for r in rows]))
    result["total_seconds"] = time.perf_counter() - start
    write_json(args.out, result)
    print(f"\nwrote {args.out} in {result['total_seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
