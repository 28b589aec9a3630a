"""Order-agnostic MADE on the binarized 8x8 digits: the ensemble of M masks vs its members.

Trains one MADE with ``num_masks`` masks/orders (one mask drawn per minibatch,
``net(mask_index="random")``), then reports the test NLL (nats per image and bits per
dimension) of the exact ensemble mixture ``net()`` (``log p = logsumexp_m log p_m - log M``),
of every member ``net(mask_index=m)`` and of the members' average. Prints a markdown table
and writes ``benchmarks/results/ensemble_digits.json``.

Run from the repository root (default: under a minute of training on 2 CPU cores)::

    python benchmarks/ensemble_digits.py
"""

from __future__ import annotations

import argparse
import datetime
import json
import math
import os
import platform
import sys
import time
from pathlib import Path
from typing import Dict, List

import torch

import pyro_ar
from pyro_ar.program.datasets import load_digits
from pyro_ar.program.training import train

__all__ = ["main"]

RESULTS = Path(__file__).resolve().parent / "results" / "ensemble_digits.json"


def parse_args(argv: List[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--num-masks", type=int, default=8)
    p.add_argument("--hidden-sizes", type=int, nargs="+", default=[512])
    p.add_argument("--epochs", type=int, default=300)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--lr", type=float, default=3e-3)
    p.add_argument("--weight-decay", type=float, default=1e-4)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch CPU threads (1 is fastest for this small net)")
    p.add_argument("--out", type=Path, default=RESULTS)
    return p.parse_args(argv)


@torch.no_grad()
def nll(net: pyro_ar.MADE, data: torch.Tensor, mask_index=None) -> float:
    """Mean negative log-likelihood in nats per image."""
    net.eval()
    return float(-net(mask_index=mask_index).log_prob(data).mean())


def fit(net: pyro_ar.MADE, train_x: torch.Tensor, valid_x: torch.Tensor, args: argparse.Namespace) -> Dict:
    """The one training loop (:func:`pyro_ar.program.training.train`): Adam with weight decay on
    ``-log p_m(x)``, one random member ``m`` per minibatch; the ensemble's validation NLL every
    5 epochs, no early stopping, the best validated parameters kept."""
    history = train(net, train_x, valid_x, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr,
                    weight_decay=args.weight_decay, patience=None, valid_every=5, seed=args.seed, progress=False)
    return {"best_epoch": history.best_epoch, "valid_nll_ensemble": history.best_valid_nll}


def main(argv: List[str] = None) -> Dict:
    args = parse_args(sys.argv[1:] if argv is None else argv)
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_x, valid_x, test_x = (load_digits(s, "bernoulli") for s in ("train", "valid", "test"))
    n = train_x.shape[1]
    net = pyro_ar.MADE(n, hidden_sizes=args.hidden_sizes, num_masks=args.num_masks, seed=args.seed)

    start = time.perf_counter()
    info = fit(net, train_x, valid_x, args)
    seconds = time.perf_counter() - start

    ensemble = nll(net, test_x)
    members = [nll(net, test_x, m) for m in range(args.num_masks)]
    average = sum(members) / len(members)
    bpd = lambda v: v / (n * math.log(2))  # noqa: E731

    rows = [("ensemble (exact mixture)", ensemble)]
    rows += [(f"member {m}", v) for m, v in enumerate(members)]
    rows += [("average single member", average), ("best single member", min(members))]
    print(f"\nMADE {args.hidden_sizes}, {args.num_masks} masks, binarized digits (test, {test_x.shape[0]} images)\n")
    print("| model | test NLL (nats) | bits/dim |")
    print("|---|---:|---:|")
    for name, v in rows:
        print(f"| {name} | {v:.2f} | {bpd(v):.4f} |")
    print(f"\nensemble gain over the average member: {average - ensemble:.2f} nats; training {seconds:.0f} s")

    result = {
        "benchmark": "ensemble_digits",
        "command": "python " + " ".join([os.path.relpath(__file__)] + (sys.argv[1:] if argv is None else argv)),
        "date": datetime.datetime.now().astimezone().isoformat(timespec="seconds"),
        "machine": {
            "description": f"{os.cpu_count()} CPU cores, {torch.get_num_threads()} torch thread(s), no GPU",
            "cpu_cores": os.cpu_count(),
            "torch_threads": torch.get_num_threads(),
            "platform": platform.platform(),
            "python": platform.python_version(),
            "torch": torch.__version__,
        },
        "config": {k: (os.path.relpath(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
        "data": {"train": train_x.shape[0], "valid": valid_x.shape[0], "test": test_x.shape[0], "event_size": n},
        "training": {**info, "seconds": round(seconds, 1)},
        "test_nll_nats": {
            "ensemble": ensemble,
            "members": members,
            "average_member": average,
            "best_member": min(members),
            "worst_member": max(members),
        },
        "test_bits_per_dim": {"ensemble": bpd(ensemble), "average_member": bpd(average)},
        "ensemble_gain_nats": average - ensemble,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.out}")
    return result


if __name__ == "__main__":
    main()
