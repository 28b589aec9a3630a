"""Helpers shared by the benchmark scripts: machine description, timing, result files.

Not part of the ``pyro_ar`` package and never imported by it or by the tests.
"""

from __future__ import annotations

import datetime
import json
import os
import platform
import random
import re
import shlex
import statistics
import sys
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

import torch

__all__ = [
    "RESULTS_DIR",
    "machine_info",
    "command_line",
    "now_iso",
    "synchronize",
    "time_interleaved",
    "markdown_table",
    "write_json",
]

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def machine_info(device: str = "cpu") -> Dict[str, Any]:
    """What the numbers were measured on: CPU, cores, threads, torch, GPU, load average."""
    info: Dict[str, Any] = {
        "cpu": _cpu_model(),
        "logical_cores": os.cpu_count(),
        "torch_threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "platform": platform.platform(),
        "device": device,
    }
    if hasattr(os, "getloadavg"):
        info["load_average_1_5_15min"] = [round(v, 2) for v in os.getloadavg()]
    if device.startswith("cuda") and torch.cuda.is_available():
        info["gpu"] = torch.cuda.get_device_name(torch.device(device))
        info["cuda"] = torch.version.cuda
    return info


def command_line() -> str:
    """The command that produced a result, as it could be typed again from the repository root."""
    interpreter = _rel(sys.executable) if ".venv" in sys.executable else "python"
    return shlex.join([interpreter, *sys.argv])


def _rel(path: str) -> str:
    try:
        return str(Path(path).relative_to(Path.cwd()))
    except ValueError:
        return path


def now_iso() -> str:
    return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_interleaved(
    fns: Mapping[str, Callable[[], Any]], repeats: int, device: str = "cpu", warmup: int = 1, stat: str = "min"
) -> Dict[str, Dict[str, float]]:
    """Wall and CPU times (ms) of each function, with the repeats interleaved.

    Interleaving (a, b, c, a, b, c, ...) makes the ratios between functions robust to load
    that changes during the run; the order within each round is shuffled (seeded), so that
    no function always follows the same one (a call right after a backward pass, or after
    a large allocation is freed, pays for it). ``ms`` is the statistic ``stat`` of the wall times:
    ``"min"`` (best of ``repeats``, the usual choice on a shared machine, where other load
    only ever adds time) or ``"median"``; both, and the median CPU time, are kept.
    """
    if stat not in ("min", "median"):
        raise ValueError(f"stat must be 'min' or 'median', got {stat!r}")
    for fn in fns.values():
        for _ in range(warmup):
            fn()
    synchronize(device)
    wall: Dict[str, List[float]] = {k: [] for k in fns}
    cpu: Dict[str, List[float]] = {k: [] for k in fns}
    order = list(fns)
    shuffler = random.Random(0)
    for _ in range(repeats):
        shuffler.shuffle(order)
        for name in order:
            fn = fns[name]
            synchronize(device)
            t0, c0 = time.perf_counter(), time.process_time()
            fn()
            synchronize(device)
            wall[name].append(time.perf_counter() - t0)
            cpu[name].append(time.process_time() - c0)
    return {
        k: {
            "ms": 1e3 * (min(wall[k]) if stat == "min" else statistics.median(wall[k])),
            "median_ms": 1e3 * statistics.median(wall[k]),
            "min_ms": 1e3 * min(wall[k]),
            "cpu_median_ms": 1e3 * statistics.median(cpu[k]),
            "repeats": repeats,
        }
        for k in fns
    }


def markdown_table(header: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A GitHub markdown table; floats are printed with 3 significant digits."""

    def fmt(v: Any) -> str:
        if isinstance(v, float):
            if v != v:  # NaN
                return "n/a"
            return f"{v:.3g}" if abs(v) < 1000 else f"{v:.0f}"
        return str(v)

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(fmt(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def write_json(path: Path, payload: Dict[str, Any], extra: Optional[Dict[str, Any]] = None) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = dict(payload)
    if extra:
        data.update(extra)
    text = json.dumps(data, indent=2, default=str)
    # Lists of numbers (training curves, per-seed values) on one line each.
    text = re.sub(r"\[\s*(-?[\d.eE+-]+(?:,\s*-?[\d.eE+-]+)*)\s*\]",
                  lambda m: "[" + ", ".join(v.strip() for v in m.group(1).split(",")) + "]", text)
    path.write_text(text + "\n")


# ---- what the speed benchmarks time ---------------------------------------------------------


def log_prob_fns(model, x: torch.Tensor) -> "tuple[Callable, Callable]":
    """``(forward, forward_backward)`` of ``model().log_prob(x)``, for the timers."""

    def forward():
        with torch.no_grad():
            return model().log_prob(x)

    def forward_backward():
        model.zero_grad(set_to_none=True)
        model().log_prob(x).sum().backward()

    return forward, forward_backward


def naive_sample(model, batch: int, steps: int) -> torch.Tensor:
    """The first ``steps`` variables of a sample drawn without the incremental state: the full
    conditioner pass on the partially drawn ``x`` per step, of which one row is used."""
    cond, head = model.conditioner, model.conditional
    param = next(model.parameters())
    x = torch.zeros(batch, model.event_size, dtype=head.sample_dtype(param.dtype), device=param.device)
    with torch.no_grad():
        for i in cond.orders[0].tolist()[:steps]:
            params = cond(head.encode(x, param.dtype))  # (B, n, P): all n conditionals
            x[:, i] = head.sample(params[:, i])
    return x

