"""The ``pyro-ar`` program: fit, sample from and evaluate AR models on the digits or your data.

::

    pyro-ar fit --model made --conditional bernoulli --out runs/made
    pyro-ar sample --checkpoint runs/made/model.pt -n 64 --out samples.png
    pyro-ar evaluate --checkpoint runs/made/model.pt --data digits
    torchrun --nproc_per_node 2 -m pyro_ar fit --model nade --out runs/nade   # DDP, gloo on CPU

``fit`` writes ``model.pt`` (a :func:`pyro_ar.save` checkpoint), ``metrics.json``,
``samples.png`` and ``learning_curve.png`` into ``--out`` (see :mod:`.run_dir`): the location
is checked and locked before training, the files are written to a staging folder and moved
in only when all are written, and nothing but these files is ever replaced. Every input is
checked before training starts; a problem prints ``pyro-ar: error: ...`` and exits with
status 1.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import torch

from pyro_ar import registry
from pyro_ar.checkpoint import load_checkpoint, plain_config, save
from pyro_ar.models import RegisteredModel, factory, memory_limit
from pyro_ar.program import tables
from pyro_ar.program.data_files import DataSet, decode_text, head_names, is_table, load_dataset, source_names
from pyro_ar.program.options import (
    add_option_flags,
    finite_float,
    head_kwargs,
    model_kwargs,
    positive_float,
    positive_int,
    random_seed,
)
from pyro_ar.program.plots import save_learning_curve, save_sample_grid, to_data_units
from pyro_ar.program.run_dir import (
    RunDir,
    UsageError,
    check_output_file,
    check_run_dir,
    prepare_run_dir,
    write_file_atomically,
)
from pyro_ar.program.training import (
    DistributedInfo,
    bits_per_dim,
    evaluate_nll,
    resolve_device,
    setup_distributed,
    teardown_distributed,
    train,
)

__all__ = ["main", "build_parser", "build_model", "OUTPUT_FILES"]

#: The files ``fit`` writes into ``--out``.
OUTPUT_FILES = ("model.pt", "metrics.json", "samples.png", "learning_curve.png")
#: Written beside them for text data (a source with an ``alphabet``): the samples decoded, one a line.
TEXT_OUTPUT = "samples.txt"
#: Written beside them for a table (``--conditional mixed``): synthetic rows with the table's columns.
TABLE_OUTPUT = "samples.csv"
ORDERS = {"identity": None, "reverse": "reverse", "random": "random"}
#: Adam's learning rate for a model whose registration names none (``cli_defaults["lr"]``).
DEFAULT_LR = 1e-3


# ---- argument parsing --------------------------------------------------------------------------


class _Parser(argparse.ArgumentParser):
    """argparse, with its errors as the program's other errors: one ``pyro-ar: error:`` line."""

    def error(self, message: str):  # type: ignore[override]
        command = self.prog.split()[-1] if " " in self.prog else ""
        hint = f"; see pyro-ar {command} --help" if command else "; see pyro-ar --help"
        self.exit(2, f"pyro-ar: error: {message}{hint}\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``pyro-ar`` (sub-commands ``fit``, ``sample``, ``evaluate``).

    Built on every call from the registry, so models and heads registered at any time
    (before ``main``) are choices, with their options as flags.
    """
    models = [e.name for e in registry.conditioner_entries()]
    sources = ", ".join(source_names())
    parser = _Parser(prog="pyro-ar", description=f"Autoregressive density models ({', '.join(models)}).")
    sub = parser.add_subparsers(dest="command", required=True)

    fit = sub.add_parser("fit", help="train a model, report test NLL, write checkpoint, metrics and plots")
    fit.add_argument("--model", choices=models, default="made", help="the conditioner (default: made)")
    fit.add_argument(
        "--conditional", choices=head_names(),
        help="the per-variable head (default: mixed for a table, a CSV file with a header row of column names; "
             "else bernoulli)",
    )
    fit.add_argument(
        "--data", default="digits", help=f"{sources} (by name; default digits), or a .npy/.npz/.csv/IDX file"
    )
    fit.add_argument(
        "--context", choices=("none", "labels"), default="none",
        help="labels: a class-conditional model p(x | class) on one-hot labels (digits, fashion-mnist)",
    )
    fit.add_argument(
        "--levels", type=positive_int, help="categorical levels K (default 4 for images, max+1 for files)"
    )
    fit.add_argument("--threshold", type=finite_float, help="binarize file data with x > T for binary heads")
    fit.add_argument(
        "--column-types", type=_column_types, metavar="NAME=KIND,...",
        help=f"tables: override inferred column kinds ({', '.join(tables.KINDS)}), e.g. year=count,id=ignore",
    )
    fit.add_argument(
        "--components", type=positive_int,
        help=f"tables: mixture components of each real column (default {tables.DEFAULT_COMPONENTS})",
    )
    fit.add_argument("--order", choices=sorted(ORDERS), default="identity", help="variable order (default identity)")
    fit.add_argument("--epochs", type=positive_int, default=200, help="maximum epochs (default 200)")
    fit.add_argument("--batch-size", type=positive_int, default=100, help="global minibatch size (default 100)")
    fit.add_argument("--lr", type=positive_float, help="Adam learning rate (default: the model's, e.g. 3e-3 for made)")
    fit.add_argument(
        "--patience", type=positive_int, default=20, help="early-stopping patience in epochs (default 20)"
    )
    fit.add_argument("--max-train", type=positive_int, help="use only the first N training rows")
    fit.add_argument("--seed", type=random_seed, default=0, help="random seed (default 0)")
    fit.add_argument("--device", default="auto", help="auto (default), cpu, cuda or cuda:N")
    fit.add_argument(
        "--threads", type=positive_int, default=1, help="CPU threads per process (default 1: the models are small)"
    )
    fit.add_argument("--out", help="output directory (default runs/<model>-<conditional>)")
    fit.add_argument(
        "--overwrite", action="store_true",
        help="replace the outputs of an earlier run in --out (other files there are never touched)",
    )
    fit.add_argument("--num-samples", type=positive_int, default=64, help="samples in samples.png (default 64)")
    fit.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_option_flags(fit)

    smp = sub.add_parser("sample", help="draw samples from a checkpoint into a PNG grid (or a .npy array)")
    smp.add_argument("--checkpoint", required=True, help="a model.pt written by fit")
    smp.add_argument("-n", "--num-samples", type=positive_int, default=64, help="how many samples (default 64)")
    smp.add_argument(
        "--out", default="samples.png",
        help="output .png (a grid), .npy (the values), for text data such as words .txt (one sample a line), "
             "for a table .csv (synthetic rows with its columns and labels)",
    )
    smp.add_argument("--overwrite", action="store_true", help="replace an existing --out file")
    smp.add_argument("--temperature", type=positive_float, default=1.0, help="logit temperature (discrete heads)")
    smp.add_argument("--label", type=int, help="class-conditional models: sample this class (default: every class)")
    smp.add_argument("--seed", type=random_seed, default=0, help="random seed (default 0)")
    smp.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or cuda:N")

    ev = sub.add_parser("evaluate", help="report the NLL of a checkpoint on a data split")
    ev.add_argument("--checkpoint", required=True, help="a model.pt written by fit")
    ev.add_argument("--data", help=f"{sources} or a file (default: the data the model was trained on)")
    ev.add_argument("--split", choices=("train", "valid", "test", "all"), default="test", help="default test")
    ev.add_argument("--batch-size", type=positive_int, default=1000, help="evaluation batch size")
    ev.add_argument("--device", default="cpu", help="cpu (default), auto, cuda or cuda:N")
    ev.add_argument("--json", action="store_true", help="print the result as one JSON object")
    return parser


def _column_types(text: str) -> Dict[str, str]:
    try:
        return tables.parse_column_types(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


# ---- models --------------------------------------------------------------------------------------


def build_head(args: argparse.Namespace, data: DataSet):
    """The head that ``fit`` uses: ``--conditional`` with its flags, sized by the data."""
    entry = registry.head_entry(args.conditional)
    kwargs = head_kwargs(args)
    if entry.data_option is not None:  # stored by the data's preparation under its own name, or as levels
        prep = data.preprocessing
        kwargs[entry.data_option] = prep[entry.data_option] if entry.data_option in prep else int(prep["levels"])
    return entry.cls(**kwargs)


def build_model(args: argparse.Namespace, data: DataSet) -> RegisteredModel:
    """The model that ``fit`` trains, sized for ``data``: ``--model`` with its flags."""
    model = factory(args.model)
    entry = model.entry
    if entry.fixed_order and ORDERS[args.order] is not None:
        raise UsageError(f"--model {entry.name} has a fixed order; --order {args.order} does not apply to it")
    # The event argument comes from the data set's attribute of the same name (event_size, or
    # image_shape for image models).
    event = getattr(data, entry.event_argument, None)
    if event is None:
        raise UsageError(f"--model {entry.name} needs data with a {entry.event_argument}; {data.name} has none")
    net = model.checked(
        copies=4,
        **{entry.event_argument: event}, conditional=build_head(args, data), context_size=data.context_size,
        order=ORDERS[args.order], seed=args.seed, **model_kwargs(args),
    )
    if net.event_size != data.event_size:
        raise UsageError(f"--model {entry.name} with {entry.event_argument}={event} has {net.event_size} variables, "
                         f"but {data.name} has {data.event_size} per example")
    return net


def learning_rate(args: argparse.Namespace) -> float:
    """``--lr``, else the model's registered default."""
    return args.lr or registry.conditioner_entry(args.model).cli_defaults.get("lr", DEFAULT_LR)


# ---- metrics -----------------------------------------------------------------------------------------


def nll_report(nll: float, data: DataSet, prefix: str) -> Dict[str, Any]:
    """NLL in nats and bits/dim; for mog also in data units and, for dequantized integer data,
    the discrete bits/dim bound."""
    n = data.event_size
    out: Dict[str, Any] = {f"{prefix}_nll": nll, f"{prefix}_bits_per_dim": bits_per_dim(nll, n)}
    if data.value_kind in ("real", "mixed"):
        raw = nll + data.log_scale
        out[f"{prefix}_nll_data_units"] = raw
        if data.preprocessing.get("dequantize"):
            out[f"{prefix}_bits_per_dim_discrete"] = bits_per_dim(raw, n)
    if data.alphabet is not None:  # text: per symbol up to and including the end of each sequence
        symbols = float(data.symbols_per_row(data.split(prefix)).double().mean())
        out[f"{prefix}_bits_per_character"] = nll / (math.log(2) * symbols)
    return out


def _density_note(data: DataSet) -> str:
    if data.value_kind == "mixed":
        return tables.DENSITY_NOTE
    if data.alphabet is not None:
        return ("text: NLL = -log P(x) of each whole sequence (padding included), in nats per sequence; "
                "*_bits_per_character divides it by ln 2 and by the mean number of symbols per sequence, "
                "counting its characters and its end symbol (not the padding after it)")
    if data.value_kind != "real":
        return "discrete: NLL = -log P(x) of the prepared (binarized/quantized) data, in nats per example"
    note = (
        "continuous: NLL = -log p(z) of the continuous density of the standardized data z = (x - mean) / std, "
        "in nats per example; *_nll_data_units adds sum(log std) (the density of x itself)"
    )
    if data.preprocessing.get("dequantize"):
        note += (
            "; x is the integer grey level plus uniform [0, 1) noise, so *_bits_per_dim_discrete is an upper "
            "bound on the discrete NLL of the grey levels, in bits per dimension"
        )
    return note


def _format_nll(label: str, report: Dict[str, Any], prefix: str) -> str:
    line = f"{label} NLL: {report[prefix + '_nll']:.4f} nats ({report[prefix + '_bits_per_dim']:.4f} bits/dim)"
    if prefix + "_bits_per_dim_discrete" in report:
        line += f"; dequantized-discrete bound {report[prefix + '_bits_per_dim_discrete']:.4f} bits/dim"
    if prefix + "_bits_per_character" in report:
        line += f"; {report[prefix + '_bits_per_character']:.4f} bits per character (end symbol included)"
    return line


# ---- commands ----------------------------------------------------------------------------------------


def _seed_all(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed % 2**32)


def run_fit(args: argparse.Namespace) -> int:
    t0 = time.perf_counter()
    if args.conditional is None:
        args.conditional = "mixed" if is_table(args.data) else "bernoulli"
    head = registry.head_entry(args.conditional)
    if (args.column_types is not None or args.components is not None) and head.cls.value_kind != "mixed":
        raise UsageError("--column-types and --components apply to tables (--conditional mixed) only")
    if args.levels is not None and head.data_option is None:
        raise UsageError(f"--levels applies to heads with levels ({_heads_with_levels()}) only")
    if args.threshold is not None and head.cls.value_kind != "binary":
        raise UsageError("--threshold applies to binary heads (--conditional bernoulli) only")
    model_kwargs(args), head_kwargs(args)  # a flag of another model or head fails here, before any work
    args.lr = learning_rate(args)
    out = f"runs/{args.model}-{args.conditional}" if args.out is None else args.out
    # Checked (and, on the main process, locked and staged) before any work; other ranks
    # only check, since they write nothing.
    if int(os.environ.get("RANK", "0")) == 0:
        run: Optional[RunDir] = prepare_run_dir(out, args.overwrite, (*OUTPUT_FILES, TEXT_OUTPUT, TABLE_OUTPUT))
    else:
        run = None
        check_run_dir(out, args.overwrite, (*OUTPUT_FILES, TEXT_OUTPUT, TABLE_OUTPUT))
    try:
        return _load_and_fit(args, run, t0)
    finally:
        if run is not None:
            run.close()


def _load_and_fit(args: argparse.Namespace, run: Optional[RunDir], t0: float) -> int:
    data = load_dataset(
        args.data, args.conditional, levels=args.levels, threshold=args.threshold, max_train=args.max_train,
        context=None if args.context == "none" else args.context, column_types=args.column_types,
        components=args.components,
    )
    resolve_device(args.device)  # a bad --device fails here, before any process group
    info = setup_distributed(args.device)
    if args.batch_size % info.world_size:
        teardown_distributed(info, finished=False)
        raise UsageError(
            f"--batch-size {args.batch_size} must be divisible by the number of processes ({info.world_size})"
        )
    finished = False
    try:
        status = _fit(args, data, run, info, t0)
        finished = True
        return status
    finally:
        teardown_distributed(info, finished)


def _heads_with_levels() -> str:
    return ", ".join(e.name for e in registry.head_entries() if e.data_option is not None)


def draw_samples(net: RegisteredModel, num_samples: int, num_classes: Optional[int], temperature: float = 1.0,
                 label: Optional[int] = None) -> Tuple[torch.Tensor, Optional[int]]:
    """``(samples (N, n) on the CPU, columns of the grid)``: unconditional draws, or for a
    class-conditional model ``num_samples`` per class (one grid row per class) or of ``label``."""
    rows = num_samples * (1 if num_classes is None or label is not None else num_classes)
    need = rows * net.event_size * (net.conditional.noise_size + 3) * 8  # noise, values, parameters
    if need > memory_limit():
        raise UsageError(f"{rows} samples of {net.event_size} variables need about {need / 2**30:.3g} GiB, more than "
                         f"the {memory_limit() / 2**30:.3g} GiB allowed; ask for fewer")
    if num_classes is None:
        d, columns = net(), None
    else:
        labels = torch.arange(num_classes) if label is None else torch.tensor([label])
        context = torch.nn.functional.one_hot(labels, num_classes).float().to(next(net.parameters()).device)
        d, columns = net(context), num_samples
    if temperature != 1.0:
        d = d.tempered(temperature)
    with torch.no_grad():
        x = d.sample((num_samples,)).cpu()
    if num_classes is not None:  # (N, classes, n) -> class-major rows
        x = x.transpose(0, 1).reshape(-1, x.shape[-1])
    return x, columns


def _fit(args: argparse.Namespace, data: DataSet, run: Optional[RunDir], info: DistributedInfo, t0: float) -> int:
    torch.set_num_threads(args.threads)
    _seed_all(args.seed)
    net = build_model(args, data).to(info.device)
    say = print if info.is_main else (lambda *a, **k: None)
    conditioned = "" if data.contexts is None else f" given {args.context} ({data.context_size} classes)"
    say(
        f"pyro-ar fit: {args.model} x {args.conditional}{conditioned} on {data.name} (n={data.event_size}, "
        f"train {len(data.train)}, valid {len(data.valid)}, test {len(data.test)}), "
        f"{sum(p.numel() for p in net.parameters())} parameters, device {info.device}, "
        f"{info.world_size} process(es)"
    )
    for note in data.preprocessing.get("notes", ()):
        say(f"note: {note}")
    history = train(
        net,
        data.train,
        data.valid,
        train_context=data.context("train"),
        valid_context=data.context("valid"),
        epochs=args.epochs,
        batch_size=args.batch_size,
        lr=args.lr,
        patience=args.patience,
        seed=args.seed,
        info=info,
        progress=not args.no_progress,
    )
    test = evaluate_nll(net, data.test, info=info, context=data.context("test"))
    valid = evaluate_nll(net, data.valid, info=info, context=data.context("valid"))
    for split, value in (("test", test), ("validation", valid)):
        if not math.isfinite(value):
            raise FloatingPointError(f"the {split} NLL is {value}: the {split} split holds values the model cannot score")
    if not info.is_main or run is None:
        return 0
    report = {**nll_report(test, data, "test"), **nll_report(valid, data, "valid")}
    say(_format_nll("test", report, "test"))
    torch.manual_seed(args.seed)
    per_class = None if data.contexts is None else max(1, math.ceil(args.num_samples / data.context_size))
    samples, columns = draw_samples(net, per_class or args.num_samples, data.context_size)
    metrics: Dict[str, Any] = {
        "command": "fit",
        "model": args.model,
        "conditional": args.conditional,
        "context": args.context,
        "data": data.name,
        "event_size": data.event_size,
        "num_train": len(data.train),
        "num_valid": len(data.valid),
        "num_test": len(data.test),
        "density": _density_note(data),
        **report,
        "first_step_loss": history.first_step_loss,
        "best_epoch": history.best_epoch,
        "epochs_run": history.epochs_run,
        "stopped_early": history.stopped_early,
        "train_seconds": history.seconds,
        "history": history.to_dict(),
        "config": plain_config(net),
        "settings": {k: v for k, v in vars(args).items() if k not in ("command", "func")},
        "world_size": info.world_size,
        "device": str(info.device),
        "torch_version": torch.__version__,
    }
    save(
        net,
        run.staging / "model.pt",
        data=data.name,
        conditional=args.conditional,
        preprocessing=data.preprocessing,
        image_shape=list(data.image_shape) if data.image_shape else None,
        log_scale=data.log_scale,
        metrics=dict(report),
        seed=args.seed,
        context=args.context,
        class_names=data.class_names,
        alphabet=data.alphabet,
    )
    values = to_data_units(samples, data.preprocessing)
    save_sample_grid(values, run.staging / "samples.png", data.preprocessing, data.image_shape, columns=columns)
    if data.alphabet is not None:
        (run.staging / TEXT_OUTPUT).write_text("".join(word + "\n" for word in data.decode(samples)))
    if data.value_kind == "mixed":
        tables.TableSchema.from_preprocessing(data.preprocessing).write_csv(run.staging / TABLE_OUTPUT, samples)
    title = f"{args.model} / {args.conditional} on {Path(data.name).name}"
    save_learning_curve(history.to_dict(), run.staging / "learning_curve.png", title)
    metrics["total_seconds"] = time.perf_counter() - t0
    (run.staging / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    written = [name for name in (*OUTPUT_FILES, TEXT_OUTPUT, TABLE_OUTPUT) if (run.staging / name).exists()]
    run.commit()
    say(f"wrote {', '.join(written)} to {run.out}/ in {metrics['total_seconds']:.1f} s")
    return 0


def _checkpoint_context(extra: Dict[str, Any], net: RegisteredModel) -> Optional[str]:
    context = extra.get("context", "none")
    if context not in ("none", "labels"):
        raise ValueError(f"the checkpoint's context {context!r} is not one pyro-ar knows (none, labels)")
    if (context == "labels") != (net.context_size is not None):
        raise ValueError("the checkpoint's context metadata does not match its model's context_size")
    return None if context == "none" else context


def _data_for_checkpoint(extra: Dict[str, Any], source: Optional[str], net: RegisteredModel) -> DataSet:
    conditional, prep = extra.get("conditional"), extra.get("preprocessing")
    if conditional not in head_names() or not isinstance(prep, dict):
        raise ValueError("the checkpoint has no data preprocessing metadata; was it written by `pyro-ar fit`?")
    source = source or extra.get("data")
    if not source:
        raise UsageError("give --data: the checkpoint does not say which data it was trained on")
    data = load_dataset(source, conditional, preprocessing=prep, context=_checkpoint_context(extra, net),
                        num_classes=net.context_size)
    if data.event_size != net.event_size:
        raise ValueError(
            f"{data.name} has {data.event_size} variables per example, but the checkpoint's model has "
            f"event_size={net.event_size}"
        )
    return data


def run_evaluate(args: argparse.Namespace) -> int:
    ckpt = load_checkpoint(args.checkpoint)
    data = _data_for_checkpoint(ckpt.extra, args.data, ckpt.model)
    device = resolve_device(args.device)
    net = ckpt.model.to(device)
    rows = data.split(args.split)
    nll = evaluate_nll(net, rows, batch_size=args.batch_size, info=DistributedInfo(device=device),
                       context=data.context(args.split))
    if not math.isfinite(nll):
        raise FloatingPointError(f"the {args.split} NLL is {nll}: the {args.split} split holds values the model cannot score")
    report = {"checkpoint": str(args.checkpoint), "data": data.name, "split": args.split, "num_examples": len(rows)}
    report.update(nll_report(nll, data, args.split))
    if data.value_kind == "mixed":  # each column's share: the chain-rule factors, summing to the NLL
        shares = tables.column_nll(net, rows, data.context(args.split), batch_size=args.batch_size)
        names = tables.TableSchema.from_preprocessing(data.preprocessing).column_names
        report["column_nll"] = None if shares is None else dict(zip(names, shares.tolist()))
    if args.json:
        print(json.dumps(report, allow_nan=False))
    else:
        print(_format_nll(f"{args.split}", report, args.split) + f" on {len(rows)} examples of {data.name}")
        if report.get("column_nll"):
            width = max(map(len, report["column_nll"]))
            for name, value in report["column_nll"].items():
                share = f"  ({value / nll:6.1%} of the NLL)" if nll > 0 else ""  # a density's NLL may be <= 0
                print(f"  {name:<{width}}  {value:9.4f} nats{share}")
        elif "column_nll" in report:
            print("  (no per-column shares: the model is a mixture of orders, not a product over columns)")
    return 0


def run_sample(args: argparse.Namespace) -> int:
    if Path(args.out).suffix.lower() not in (".png", ".npy", ".txt", ".csv"):
        raise UsageError(f"--out must end in .png, .npy, .txt or .csv, got {args.out!r}")
    out = check_output_file(args.out, args.overwrite)
    ckpt = load_checkpoint(args.checkpoint)
    alphabet = ckpt.extra.get("alphabet")
    if out.suffix.lower() == ".txt" and not alphabet:
        raise UsageError("--out .txt needs a model of text data (trained on a source with an alphabet, e.g. words)")
    if out.suffix.lower() == ".csv" and "table" not in (ckpt.extra.get("preprocessing") or {}):
        raise UsageError("--out .csv needs a model of a table (trained with --conditional mixed on a CSV table)")
    net = ckpt.model
    prep = ckpt.extra.get("preprocessing") or {"kind": net.conditional.registry_name,
                                               "value_kind": net.conditional.value_kind}
    classes = net.context_size if _checkpoint_context(ckpt.extra, net) else None
    if args.label is not None and (classes is None or not 0 <= args.label < classes):
        raise UsageError(f"--label needs a class-conditional model and a label in 0..{(classes or 1) - 1}")
    device = resolve_device(args.device)
    net = net.to(device)
    torch.manual_seed(args.seed)
    samples, columns = draw_samples(net, args.num_samples, classes, args.temperature, args.label)
    values = to_data_units(samples, prep)
    if out.suffix.lower() == ".npy":
        write_file_atomically(out, lambda path: np.save(path, values), overwrite=args.overwrite)
    elif out.suffix.lower() == ".txt":
        text = "".join(word + "\n" for word in decode_text(samples, alphabet))
        write_file_atomically(out, lambda path: Path(path).write_text(text), overwrite=args.overwrite)
    elif out.suffix.lower() == ".csv":
        text = tables.TableSchema.from_preprocessing(prep).csv_text(samples)
        write_file_atomically(out, lambda path: Path(path).write_text(text), overwrite=args.overwrite)
    else:
        write_file_atomically(
            out, lambda path: save_sample_grid(values, path, prep, ckpt.extra.get("image_shape"), columns=columns),
            overwrite=args.overwrite,
        )
    print(f"wrote {len(values)} samples to {out}")
    return 0


COMMANDS = {"fit": run_fit, "sample": run_sample, "evaluate": run_evaluate}


def _one_line(err: BaseException) -> str:
    return " ".join(str(err).split()) or type(err).__name__


def main(argv: Optional[List[str]] = None) -> int:
    """Entry point of ``pyro-ar`` and ``python -m pyro_ar``; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except (ValueError, FloatingPointError) as err:
        print(f"pyro-ar: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except OSError as err:  # a full disk, a file that vanished: said, not a traceback
        print(f"pyro-ar: error: {_one_line(err)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("pyro-ar: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
