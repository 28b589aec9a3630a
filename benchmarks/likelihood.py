"""Test negative log-likelihood of pyro_ar models (nats per example, and bits per dimension).

Four groups, each trained with the one training loop of ``pyro-ar fit``
(:func:`pyro_ar.program.training.train`: Adam, minibatches of 100, the validation NLL after
every epoch, early stopping with the best epoch's parameters restored; nflows' models go
through the same loop, wrapped by :class:`peers.PeerDensity`):

1. digits: the embedded 8x8 digits, binarized (Bernoulli heads) and quantized to 4 grey
   levels (Categorical heads): FVSBN, NADE, MADE with 1 and 2 hidden layers and 1 and 8
   masks, RNN, Transformer. Ensembles train one random mask per step and are scored as their
   exact mixture.
2. fashion: binarized Fashion-MNIST (784 dims; Debian package ``dataset-fashion-mnist``):
   FVSBN, NADE (500 hidden units), MADE (500 hidden units, 1 mask), RNN, Transformer, on a
   fixed epoch budget.
3. words: the packaged English words (13 categorical codes: a-z and the end symbol) with
   NADE, MADE, RNN (GRU) and Transformer of about 0.1 M parameters each; NLL per word and bits
   per character (letters and end symbol), as ``pyro-ar fit --data words`` reports them.
4. continuous: mixture-of-Gaussians AR models on real-valued tables (scikit-learn's
   breast cancer, 30 columns; the dequantized digits, 64 columns; scikit-learn's wine,
   13 columns, dequantized over each column's rounding unit) against nflows'
   ``MixtureOfGaussiansMADE`` with the same widths, data, split, seed, optimizer and epoch
   budget, in the same run (needs nflows: ``bash benchmarks/nflows_env.sh``). Pairs of
   the same function class: our linear FVSBN-MoG and nflows with ``num_blocks=0`` (which
   has no activation), our MADE with 1 / 2 ReLU layers and nflows' feedforward MADE with
   1 / 2 blocks (each a ReLU layer after its first, linear, layer); nflows' residual
   default is listed as shipped, beside our residual MADE of the same weight shapes and our
   model chosen by validation NLL (``TUNED``).

The digits and Fashion-MNIST groups also train ``pyro_ar.RNN`` (GRU) and ``pyro_ar.Transformer``
at their defaults; on Fashion-MNIST they get fewer epochs (flags), since one epoch costs about
8 and 27 minutes on one CPU thread.

Usage (from the repository root)::

    benchmarks/.venv-nflows/bin/python benchmarks/likelihood.py          # everything
    python benchmarks/likelihood.py --groups digits,fashion              # no nflows needed
    python benchmarks/likelihood.py --quick                              # a 1-2 minute smoke run

Without the sequence models the default budget took about 25 minutes on 2 CPU cores; the
RNN and the Transformer on Fashion-MNIST add about 25 + 27 minutes on one thread (their log_prob
runs 784 recurrent steps, or attention over 784 positions, per image), NADE there about 10.
Prints markdown tables and writes ``results/likelihood.json`` with machine, date and command.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

import torch
from torch import Tensor, nn

import pyro_ar
from pyro_ar.conditionals import Categorical, MixtureOfGaussians
from pyro_ar.program.training import evaluate_nll, train

import bench_data
from peers import PeerDensity
from bench_utils import RESULTS_DIR, command_line, machine_info, markdown_table, now_iso, write_json

# ---- one training loop for every model: pyro_ar's own -----------------------------------------


def fit(module: nn.Module, data: Dict[str, Tensor], epochs: int, lr: float, batch_size: int, patience: int,
        seed: int) -> Dict[str, Any]:
    """Train with :func:`pyro_ar.program.training.train` (Adam, validation after every epoch,
    early stopping, the best epoch's parameters restored), the loop of ``pyro-ar fit``.

    ``module`` is a pyro_ar model or a peer wrapped in :class:`peers.PeerDensity`; MADE
    ensembles train one random mask per step and are scored as their exact mixture. Returns
    the test and valid NLLs (nats per example) at the best epoch, the train NLL on at most
    5,000 training rows, the epochs run and the training wall time.
    """
    history = train(module, data["train"], data["valid"], epochs=epochs, batch_size=batch_size, lr=lr,
                    patience=patience, seed=seed, progress=False)
    return {
        "test_nll": evaluate_nll(module, data["test"]),
        "valid_nll": history.best_valid_nll,
        "train_nll": evaluate_nll(module, data["train"][:5000]),  # a subset: the gap to test shows overfitting
        "best_epoch": history.best_epoch,
        "epochs_run": history.epochs_run,
        "train_seconds": history.seconds,
        "valid_curve": [round(v, 4) for v in history.valid_nll],
    }


def num_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# ---- the three groups ------------------------------------------------------------------------


def digits_models(kind: str) -> Dict[str, Callable[[], pyro_ar.AutoregressiveModel]]:
    head = (lambda: None) if kind == "bernoulli" else (lambda: Categorical(4))
    n = 64
    return {
        "FVSBN": lambda: pyro_ar.FVSBN(n, conditional=head()),
        "NADE (d=128)": lambda: pyro_ar.NADE(n, 128, conditional=head()),
        "MADE 1x256, 1 mask": lambda: pyro_ar.MADE(n, [256], conditional=head()),
        "MADE 1x256, 8 masks": lambda: pyro_ar.MADE(n, [256], conditional=head(), num_masks=8),
        "MADE 2x256, 1 mask": lambda: pyro_ar.MADE(n, [256, 256], conditional=head()),
        "MADE 2x256, 8 masks": lambda: pyro_ar.MADE(n, [256, 256], conditional=head(), num_masks=8),
        # The sequence conditioners at their defaults (parameters close to NADE's and the 1-layer MADE's).
        "RNN (GRU, H=128)": lambda: pyro_ar.RNN(n, 128, cell="gru", conditional=head()),
        "Transformer (D=64, 4 heads, 2 layers)": lambda: pyro_ar.Transformer(n, d_model=64, conditional=head()),
    }


def chosen(args, name: str) -> bool:
    """Whether ``--models`` (comma-separated name prefixes; empty: all) selects model ``name``."""
    prefixes = [p.strip() for p in (args.models or "").split(",") if p.strip()]
    return not prefixes or any(name.startswith(p) for p in prefixes)


def run_digits(args, rows: List[Dict[str, Any]]) -> None:
    for kind, label in (("bernoulli", "digits 8x8, binarized"), ("categorical", "digits 8x8, 4 grey levels")):
        data = bench_data.digits(kind)
        for name, make in digits_models(kind).items():
            if not chosen(args, name):
                continue
            torch.manual_seed(args.seed)
            net = make()
            res = fit(net, data, args.digits_epochs, args.lr, args.batch_size, args.patience, args.seed)
            rows.append(row(label, f"pyro_ar {name}", net, data, res, args.digits_epochs))
            report(rows[-1])


def run_fashion(args, rows: List[Dict[str, Any]]) -> None:
    data = bench_data.fashion_mnist_binary(max_train=args.fashion_max_train)
    n = data["train"].shape[1]
    models = {
        "FVSBN": (lambda: pyro_ar.FVSBN(n), args.fashion_epochs),
        "NADE (d=500)": (lambda: pyro_ar.NADE(n, 500), args.fashion_nade_epochs),
        "MADE 1x500, 1 mask": (lambda: pyro_ar.MADE(n, [500]), args.fashion_epochs),
        # Their log_prob costs 784 recurrent steps / attention over 784 positions per row:
        # an epoch takes about 8 (RNN) and 27 (Transformer) minutes on one CPU thread.
        "RNN (GRU, H=128)": (lambda: pyro_ar.RNN(n, 128, cell="gru"), args.fashion_rnn_epochs),
        "Transformer (D=64, 4 heads, 2 layers)": (lambda: pyro_ar.Transformer(n, d_model=64),
                                                  args.fashion_transformer_epochs),
    }
    for name, (make, epochs) in models.items():
        if not chosen(args, name):
            continue
        torch.manual_seed(args.seed)
        net = make()
        res = fit(net, data, epochs, args.lr, args.batch_size, args.patience, args.seed)
        rows.append(row("Fashion-MNIST, binarized", f"pyro_ar {name}", net, data, res, epochs))
        report(rows[-1])


def words_models(n: int, k: int) -> Dict[str, Callable[[], pyro_ar.AutoregressiveModel]]:
    """The character models of the words group, sized to about 0.1 M parameters each."""
    head = lambda: Categorical(k)  # noqa: E731
    return {
        "NADE (d=128)": lambda: pyro_ar.NADE(n, 128, conditional=head()),
        "MADE 1x128, 1 mask": lambda: pyro_ar.MADE(n, [128], conditional=head()),
        "RNN (GRU, H=128)": lambda: pyro_ar.RNN(n, 128, cell="gru", conditional=head()),
        "Transformer (D=64, 4 heads, 2 layers)": lambda: pyro_ar.Transformer(n, d_model=64, conditional=head()),
    }


def run_words(args, rows: List[Dict[str, Any]]) -> None:
    """The packaged words (``pyro-ar fit --data words``): NLL per word and bits per character.

    Bits per character divide the NLL by ln 2 and by the mean number of symbols per word up to
    and including its end symbol (the padding after it is certain once the end is drawn), as
    the CLI reports them.
    """
    from pyro_ar.program.data_files import load_dataset

    words = load_dataset("words", "categorical", max_train=args.words_max_train)
    data = {"train": words.train, "valid": words.valid, "test": words.test}
    symbols = {s: float(words.symbols_per_row(data[s]).double().mean()) for s in ("valid", "test")}
    for name, make in words_models(words.event_size, len(words.alphabet)).items():
        torch.manual_seed(args.seed)
        net = make()
        res = fit(net, data, args.words_epochs, args.lr, args.batch_size, args.patience, args.seed)
        r = row("words (13 codes of 27)", f"pyro_ar {name}", net, data, res, args.words_epochs)
        r["symbols_per_word"] = symbols
        for split in ("valid", "test"):
            r[f"{split}_bits_per_character"] = r[f"{split}_nll"] / (math.log(2) * symbols[split])
        with torch.no_grad():
            r["samples"] = words.decode(net().sample((8,)))
        rows.append(r)
        report(r)
        print(f"    {r['test_bits_per_character']:.4f} bits per character; samples: {' '.join(r['samples'])}", flush=True)


def run_continuous(args, rows: List[Dict[str, Any]]) -> Optional[str]:
    try:
        from nflows.nn.nde import MixtureOfGaussiansMADE
    except ImportError:
        MixtureOfGaussiansMADE = None
    k, h = args.components, args.continuous_hidden
    chosen = [t.strip() for t in args.tables.split(",") if t.strip()]
    bench_data.check_tables(chosen)
    tables = {bench_data.CONTINUOUS_TABLES[t]: bench_data.continuous_table(t, args.seed) for t in chosen}
    for label, data in tables.items():
        n = data["train"].shape[1]
        mog = lambda floor=1e-2: MixtureOfGaussians(k, min_scale=floor)  # noqa: E731  (1e-2: the default)
        ours_models = {
            f"pyro_ar FVSBN-MoG (linear), K={k}": lambda: pyro_ar.FVSBN(n, conditional=mog()),
            f"pyro_ar MoG-MADE 1x{h} ReLU, K={k}": lambda: pyro_ar.MADE(n, [h], conditional=mog()),
            f"pyro_ar MoG-MADE 2x{h} ReLU, K={k}": lambda: pyro_ar.MADE(n, [h, h], conditional=mog()),
            # nflows' num_blocks=0 model: a linear AR model factorized through h hidden units.
            f"pyro_ar MoG-MADE 1x{h} linear, K={k}": lambda: pyro_ar.MADE(n, [h], conditional=mog(), activation="linear"),
            # The default before 2026-11-23, kept for comparison.
            f"pyro_ar MoG-MADE 1x{h} ReLU, K={k}, min_scale=1e-3": lambda: pyro_ar.MADE(n, [h], conditional=mog(1e-3)),
            # The weight shapes (and parameter count) of nflows' default below.
            f"pyro_ar MoG-MADE 1x{h} ReLU, 2 residual blocks, K={k}": lambda: pyro_ar.MADE(
                n, [h], residual_blocks=2, conditional=mog()),
        }
        for hidden, blocks, activation, comps, floor, masks in TUNED:  # the search's finalists
            name = f"pyro_ar MoG-MADE 1x{hidden} {activation.upper()}, {blocks} residual blocks, K={comps}"
            name += ("" if floor == 1e-2 else f", min_scale={floor:g}") + ("" if masks == 1 else f", {masks} masks")
            ours_models[name] = (
                lambda hidden=hidden, blocks=blocks, activation=activation, comps=comps, floor=floor, masks=masks:
                pyro_ar.MADE(n, [hidden], residual_blocks=blocks, activation=activation, num_masks=masks,
                             conditional=MixtureOfGaussians(comps, min_scale=floor)))
        ours = []
        for name, make in ours_models.items():
            ours.append(fit_seeds(label, name, make, data, args))
            report(ours[-1])
        # "Our best" on this table: the lowest mean validation NLL (never the test NLL).
        best = min(ours, key=lambda r: r["valid_nll"])
        best["selected_by_validation"] = True
        print(f"  selected by validation NLL: {best['model']}", flush=True)
        rows.extend(ours)
        if MixtureOfGaussiansMADE is None:
            continue
        # nflows 0.14's nn/nde MADE applies no activation after its first masked layer, so
        # num_blocks=0 is a linear AR model (a rank-h factorization of FVSBN's map) and each
        # feedforward block adds one ReLU layer after that linear layer.
        peers = {
            f"nflows MoG-MADE num_blocks=0 (linear), {h}, K={k}": dict(num_blocks=0, use_residual_blocks=False),
            f"nflows MoG-MADE feedforward, 1 block (linear + 1 ReLU layer), {h}, K={k}": dict(
                num_blocks=1, use_residual_blocks=False),
            f"nflows MoG-MADE feedforward, 2 blocks (linear + 2 ReLU layers), {h}, K={k}": dict(
                num_blocks=2, use_residual_blocks=False),
            f"nflows MoG-MADE default (residual, 2 blocks), {h}, K={k}": dict(num_blocks=2, use_residual_blocks=True),
        }
        for name, kwargs in peers.items():
            make = lambda kwargs=kwargs: PeerDensity(MixtureOfGaussiansMADE(  # noqa: E731
                features=n, hidden_features=h, num_mixture_components=k, **kwargs))
            rows.append(fit_seeds(label, name, make, data, args))
            report(rows[-1])
    if MixtureOfGaussiansMADE is None:
        return "nflows not importable: run `bash benchmarks/nflows_env.sh` and use benchmarks/.venv-nflows/bin/python"
    return None


#: Residual MADEs (hidden width, residual blocks, activation, K, min_scale, masks) with the best mean validation
#: NLL over 3 seeds on the breast-cancer or the digits table in the search of
#: benchmarks/continuous_search.py (results/continuous_search.json); every table trains all of them,
#: and the row with the lowest validation NLL of the table is marked as our best there.
TUNED = [(128, 2, "elu", 5, 1e-2, 1), (128, 2, "elu", 3, 1e-2, 1), (128, 3, "elu", 5, 1e-2, 1),
         (128, 3, "elu", 3, 1e-2, 1), (128, 2, "elu", 5, 3e-2, 1), (128, 2, "relu", 5, 1e-2, 4),
         (128, 2, "elu", 5, 1e-2, 4)]


def fit_seeds(label: str, name: str, make: Callable[[], nn.Module], data, args) -> Dict[str, Any]:
    """Train ``make()`` once per seed (initialization and shuffling; the split is fixed).

    The row holds the mean over seeds, with the per-seed values and their standard deviation.
    """
    runs, module = [], None
    for s in range(args.continuous_seeds):
        torch.manual_seed(args.seed + s)
        module = make()
        runs.append(fit(module, data, args.continuous_epochs, args.lr, args.batch_size, args.patience, args.seed + s))
    mean = {k: sum(r[k] for r in runs) / len(runs) for k in ("test_nll", "valid_nll", "train_nll", "train_seconds")}
    res = {**runs[0], **mean, "seeds": len(runs), "test_nll_per_seed": [r["test_nll"] for r in runs],
           "best_epoch_per_seed": [r["best_epoch"] for r in runs], "epochs_run_per_seed": [r["epochs_run"] for r in runs]}
    res["test_nll_sd"] = statistics.stdev(res["test_nll_per_seed"]) if len(runs) > 1 else 0.0
    res.pop("valid_curve")
    return row(label, name, module, data, res, args.continuous_epochs)


def row(dataset: str, model: str, module: nn.Module, data: Dict[str, Tensor], res: Dict[str, Any], budget: int):
    n = data["train"].shape[1]
    return {"dataset": dataset, "model": model, "params": num_params(module), "dims": n,
            "test_bits_per_dim": res["test_nll"] / (n * math.log(2)), "epoch_budget": budget,
            "train_rows": len(data["train"]), **res}


def nll_text(r: Dict[str, Any]) -> str:
    """``mean`` or ``mean ± sd (k seeds)``, in nats."""
    if r.get("seeds", 1) > 1:
        return f"{r['test_nll']:.2f} ± {r['test_nll_sd']:.2f} ({r['seeds']} seeds)"
    return f"{r['test_nll']:.2f}"


def report(r: Dict[str, Any]) -> None:
    spread = f" +- {r['test_nll_sd']:.2f} over {r['seeds']} seeds" if "seeds" in r else ""
    print(f"  {r['dataset']:<34} {r['model']:<52} test NLL {r['test_nll']:9.3f} nats{spread} "
          f"({r['test_bits_per_dim']:.4f} bits/dim), best epoch {r['best_epoch']}/{r['epochs_run']}, "
          f"{r['train_seconds']:.0f} s", flush=True)


def main(argv: Optional[List[str]] = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--groups", default="digits,fashion,words,continuous", help="comma-separated subset")
    parser.add_argument("--models", default=None,
                        help="digits and fashion groups: only models whose names start with one of these "
                             "comma-separated prefixes (e.g. RNN,Transformer)")
    parser.add_argument("--digits-epochs", type=int, default=300)
    parser.add_argument("--fashion-epochs", type=int, default=10, help="FVSBN and MADE on Fashion-MNIST")
    parser.add_argument("--fashion-nade-epochs", type=int, default=3, help="NADE on Fashion-MNIST (the slow one)")
    parser.add_argument("--fashion-rnn-epochs", type=int, default=3, help="the GRU on Fashion-MNIST (~8 min an epoch)")
    parser.add_argument("--fashion-transformer-epochs", type=int, default=1,
                        help="the Transformer on Fashion-MNIST (~27 min an epoch on one CPU thread)")
    parser.add_argument("--fashion-max-train", type=int, default=None, help="use only the first N rows of each split")
    parser.add_argument("--words-epochs", type=int, default=10)
    parser.add_argument("--words-max-train", type=int, default=None, help="use only the first N training words")
    parser.add_argument("--continuous-epochs", type=int, default=300)
    parser.add_argument("--continuous-hidden", type=int, default=128)
    parser.add_argument("--tables", default="breast_cancer,digits,wine", help="the continuous group's tables")
    parser.add_argument("--continuous-seeds", type=int, default=3, help="seeds per continuous model (mean reported)")
    parser.add_argument("--components", type=int, default=5, help="mixture components K")
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch-size", type=int, default=100)
    parser.add_argument("--patience", type=int, default=20)
    parser.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--quick", action="store_true", help="few epochs and a Fashion-MNIST subset: a smoke run")
    parser.add_argument("--out", type=Path, default=None, help="JSON path (default results/likelihood[_quick].json)")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.quick:
        args.digits_epochs, args.fashion_epochs, args.fashion_nade_epochs = 5, 1, 1
        args.fashion_rnn_epochs = args.fashion_transformer_epochs = 1
        args.words_epochs, args.words_max_train = 1, 2000
        args.fashion_max_train, args.continuous_epochs, args.continuous_seeds = 2000, 5, 2
    groups = [g.strip() for g in args.groups.split(",") if g.strip()]
    unknown = set(groups) - {"digits", "fashion", "words", "continuous"}
    if unknown:
        raise SystemExit(f"unknown groups {sorted(unknown)}: choose from digits, fashion, words, continuous")
    started = time.perf_counter()
    info = machine_info("cpu")
    print(f"# pyro_ar likelihood benchmarks ({', '.join(groups)})")
    print(f"{info['cpu']}, {info['logical_cores']} logical cores, torch {info['torch']} with "
          f"{info['torch_threads']} threads; load average {info.get('load_average_1_5_15min')}", flush=True)
    rows: List[Dict[str, Any]] = []
    notes = []
    if "digits" in groups:
        run_digits(args, rows)
    if "fashion" in groups:
        run_fashion(args, rows)
    if "words" in groups:
        run_words(args, rows)
    if "continuous" in groups:
        note = run_continuous(args, rows)
        if note:
            notes.append(note)
    print()
    print(markdown_table(
        ["data", "model", "params", "test NLL (nats)", "bits/dim", "valid NLL", "best/run epochs (seed 0)", "train s"],
        [[r["dataset"], r["model"] + (" (selected by validation)" if r.get("selected_by_validation") else ""),
          r["params"], nll_text(r), r["test_bits_per_dim"], r["valid_nll"],
          f"{r['best_epoch']}/{r['epochs_run']}", r["train_seconds"]] for r in rows]))
    text = [r for r in rows if "test_bits_per_character" in r]
    if text:
        print()
        print(markdown_table(
            ["data", "model", "params", "test NLL (nats/word)", "bits/char", "valid bits/char", "best/run epochs",
             "train s", "samples"],
            [[r["dataset"], r["model"], r["params"], r["test_nll"], r["test_bits_per_character"],
              r["valid_bits_per_character"], f"{r['best_epoch']}/{r['epochs_run']}", r["train_seconds"],
              " ".join(r["samples"])] for r in text]))
    for note in notes:
        print(f"\n{note}")
    info["load_average_at_end"] = machine_info("cpu").get("load_average_1_5_15min")
    result = {"date": now_iso(), "command": command_line(), "machine": info, "settings": vars(args), "rows": rows,
              "notes": notes, "wall_seconds": time.perf_counter() - started}
    out = args.out or RESULTS_DIR / f"likelihood{'_quick' if args.quick else ''}.json"
    write_json(out, result)
    print(f"\nwrote {out} ({result['wall_seconds']:.0f} s)")


if __name__ == "__main__":
    main()
