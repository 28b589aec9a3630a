"""Model search for the real-valued tables of ``likelihood.py`` (issue 16, item 3), by VALIDATION NLL.

Every candidate is trained with the likelihood benchmark's protocol (the one training loop:
Adam lr 1e-3, batch 100, at most 300 epochs, patience 20, best epoch restored; seeds 0-2 of
initialization and shuffling, split fixed) on each table. The script prints and stores the
mean validation NLL (the selection criterion) and, for the record, the mean test NLL; the
choice of the model listed in ``likelihood.py`` is made from the validation column only.

Usage (the 2026-12-03 search ran the tables in separate processes, in three rounds of ``--only``
lists; ``results/continuous_search.json`` holds all of their rows)::

    python benchmarks/continuous_search.py --threads 1 --tables breast_cancer --out /tmp/search_bc.json
    python benchmarks/continuous_search.py --threads 1 --tables digits --only "MADE 1x128 res2 elu,MADE 1x64 res2 elu"

The table ``wine`` is available too (it was not searched: its splits are tiny, 35 validation rows).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path
from typing import Any, Dict, List, Optional

import torch

import pyro_ar
from pyro_ar.conditionals import MixtureOfGaussians
from pyro_ar.program.training import evaluate_nll, train

import bench_data
from bench_utils import RESULTS_DIR, command_line, machine_info, now_iso, write_json

def made(hidden, blocks=0, activation="relu", k=5, masks=1, floor=1e-2):
    """A factory ``n -> pyro_ar.MADE`` with a MoG head, as a user writes it."""
    return lambda n: pyro_ar.MADE(n, list(hidden), residual_blocks=blocks, activation=activation, num_masks=masks,
                                  conditional=MixtureOfGaussians(k, min_scale=floor))


#: name -> (factory n -> model, training keyword arguments beyond the protocol's)
CANDIDATES: Dict[str, Any] = {
    "MADE 1x128 res2 relu": (made([128], 2), {}),
    "MADE 1x128 res2 elu": (made([128], 2, "elu"), {}),
    "MADE 1x128 res2 gelu": (made([128], 2, "gelu"), {}),
    "MADE 1x128 res2 tanh": (made([128], 2, "tanh"), {}),
    "MADE 1x128 res1 relu": (made([128], 1), {}),
    "MADE 1x128 res4 relu": (made([128], 4), {}),
    "MADE 1x256 res2 relu": (made([256], 2), {}),
    "MADE 1x128 res2 relu K=10": (made([128], 2, k=10), {}),
    "MADE 1x128 res2 relu wd1e-4": (made([128], 2), {"weight_decay": 1e-4}),
    "MADE 1x128 res2 elu wd1e-4": (made([128], 2, "elu"), {"weight_decay": 1e-4}),
    "MADE 1x128 linear K=10": (made([128], 0, "linear", k=10), {}),
    "MADE 1x128 res2 relu 4 masks": (made([128], 2, masks=4), {}),
    # Second round, around the best of the first (ELU) on both tables' validation NLL.
    "MADE 1x128 res2 elu K=3": (made([128], 2, "elu", k=3), {}),
    "MADE 1x128 res2 elu K=10": (made([128], 2, "elu", k=10), {}),
    "MADE 1x64 res2 elu": (made([64], 2, "elu"), {}),
    "MADE 1x256 res2 elu": (made([256], 2, "elu"), {}),
    "MADE 1x128 res1 elu": (made([128], 1, "elu"), {}),
    "MADE 1x128 res3 elu": (made([128], 3, "elu"), {}),
    "MADE 1x128 res2 elu min_scale=3e-2": (made([128], 2, "elu", floor=3e-2), {}),
    "MADE 1x128 res2 elu 4 masks": (made([128], 2, "elu", masks=4), {}),
    "MADE 2x128 res2 elu": (made([128, 128], 2, "elu"), {}),
    "MADE 1x256 linear": (made([256], 0, "linear"), {}),
    "MADE 1x128 linear K=3": (made([128], 0, "linear", k=3), {}),
    "MADE 1x128 res2 elu K=2": (made([128], 2, "elu", k=2), {}),
    # Third round: between the best of each table (res2 K=3 on breast cancer, res3 K=5 on the digits).
    "MADE 1x128 res2 elu K=4": (made([128], 2, "elu", k=4), {}),
    "MADE 1x128 res3 elu K=3": (made([128], 3, "elu", k=3), {}),
}


def run(name: str, table: str, data, epochs: int, seeds: int) -> Dict[str, Any]:
    make, extra = CANDIDATES[name]
    n = data["train"].shape[1]
    runs = []
    for seed in range(seeds):
        torch.manual_seed(seed)
        net = make(n)
        hist = train(net, data["train"], data["valid"], epochs=epochs, batch_size=100, lr=1e-3, patience=20,
                     seed=seed, progress=False, **extra)
        runs.append({"valid_nll": hist.best_valid_nll, "test_nll": evaluate_nll(net, data["test"]),
                     "best_epoch": hist.best_epoch, "epochs_run": hist.epochs_run, "seconds": hist.seconds})
    out = {"table": table, "model": name, "params": sum(p.numel() for p in net.parameters()), "runs": runs}
    for key in ("valid_nll", "test_nll"):
        vals = [r[key] for r in runs]
        out[key] = statistics.mean(vals)
        out[key + "_sd"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
    return out


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tables", default="breast_cancer,digits")
    parser.add_argument("--only", default=None, help="comma-separated candidate names (default: all)")
    parser.add_argument("--epochs", type=int, default=300)
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)
    names = list(CANDIDATES) if args.only is None else [s.strip() for s in args.only.split(",")]
    started, rows = time.perf_counter(), []
    info = machine_info("cpu")
    for table in args.tables.split(","):
        data = bench_data.continuous_table(table)
        for name in names:
            r = run(name, table, data, args.epochs, args.seeds)
            rows.append(r)
            print(f"{table:<14} {name:<34} params {r['params']:>7}  valid {r['valid_nll']:8.2f} ± {r['valid_nll_sd']:.2f}"
                  f"  test {r['test_nll']:8.2f} ± {r['test_nll_sd']:.2f}  best epochs "
                  f"{[x['best_epoch'] for x in r['runs']]}  {sum(x['seconds'] for x in r['runs']):.0f} s", flush=True)
    info["load_average_at_end"] = machine_info("cpu").get("load_average_1_5_15min")
    out = args.out or RESULTS_DIR / "continuous_search.json"
    write_json(out, {"date": now_iso(), "command": command_line(), "machine": info, "settings": vars(args),
                     "rows": rows, "wall_seconds": time.perf_counter() - started})
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
