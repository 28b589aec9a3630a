"""Maximum-likelihood training and evaluation of pyro_ar models, on one process or many.

``train`` runs Adam on minibatches of the negative log-likelihood, evaluates the
validation NLL after every epoch, stops early after ``patience`` epochs without
improvement and restores the best parameters. Under ``torchrun`` (the ``RANK`` /
``WORLD_SIZE`` / ``LOCAL_RANK`` environment), :func:`setup_distributed` joins the process
group (gloo on CPU, nccl on CUDA); ``train`` then wraps :class:`NegativeLogLikelihood` in
``DistributedDataParallel``, shards every epoch with ``DistributedSampler`` (each process
gets ``batch_size / world_size`` rows of the same global batch) and averages metrics with
``all_reduce``, so that N processes follow the same trajectory as one, within float noise.

Conditional models ``p(x | context)`` train on rows with a context each (for example
one-hot class labels): pass ``train_context``/``valid_context`` (``(N, c)``, row-aligned with
the data) to :func:`train` and ``context`` to :func:`evaluate_nll`.

NLLs are in nats per example; :func:`bits_per_dim` converts (``nats / (n ln 2)``).
"""

from __future__ import annotations

import copy
import math
import os
import sys
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

import torch
import torch.distributed as dist
from torch import Tensor, nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import DistributedSampler
from tqdm.auto import tqdm

from pyro_ar.models import AutoregressiveModel

__all__ = [
    "NegativeLogLikelihood",
    "DistributedInfo",
    "History",
    "setup_distributed",
    "teardown_distributed",
    "resolve_device",
    "train",
    "evaluate_nll",
    "bits_per_dim",
]


# ---- devices and process groups ------------------------------------------------------------


def resolve_device(name: str = "auto") -> torch.device:
    """``"auto"`` (CUDA when present, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"unknown device {name!r}: use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device {name!r} was asked for, but CUDA is not available on this machine")
    if device.type not in ("cpu", "cuda"):
        raise ValueError(f"unsupported device {name!r}: use auto, cpu, cuda or cuda:N")
    return device


@dataclass
class DistributedInfo:
    """Where this process stands: its rank among ``world_size`` and its device."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Only the main process (rank 0) prints and writes files."""
        return self.rank == 0


def setup_distributed(device: str = "auto") -> DistributedInfo:
    """Join the ``torchrun`` process group when its environment is set, else a single process.

    Each process uses ``cuda:LOCAL_RANK`` on GPU machines (backend nccl) or the CPU
    (backend gloo).
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1 or "RANK" not in os.environ:
        return DistributedInfo(device=resolve_device(device))
    rank, local_rank = int(os.environ["RANK"]), int(os.environ.get("LOCAL_RANK", "0"))
    dev = resolve_device(device)
    if dev.type == "cuda":
        dev = torch.device("cuda", local_rank)
        torch.cuda.set_device(dev)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if dev.type == "cuda" else "gloo")
    return DistributedInfo(rank=rank, world_size=world_size, local_rank=local_rank, device=dev)


def teardown_distributed(info: DistributedInfo, finished: bool = True) -> None:
    """Leave the process group (a no-op for a single process).

    ``finished``: every rank got here normally, so they first wait for each other (a rank
    that leaves while another still has gloo work in flight can abort at exit, "terminate
    called without an active exception", seen once in CI). After an error there is no
    waiting: the other ranks may never arrive.
    """
    if info.enabled and dist.is_initialized():
        if finished:
            dist.barrier()
        dist.destroy_process_group()


def _all_sum(values: List[float], info: DistributedInfo) -> List[float]:
    """Element-wise sum over processes (identity on one process)."""
    if not info.enabled:
        return values
    t = torch.tensor(values, dtype=torch.float64, device=info.device)
    dist.all_reduce(t)
    return t.tolist()


# ---- the loss --------------------------------------------------------------------------------


class NegativeLogLikelihood(nn.Module):
    """``forward(x, context) = -mean log p(x | context)``: the module that DDP wraps.

    The factory module returns a distribution, not a tensor, so DDP (which hooks the
    wrapped module's forward) must wrap the computation of the loss itself.

    Args:
        net: a :class:`pyro_ar.models.AutoregressiveModel`.
    """

    def __init__(self, net: AutoregressiveModel):
        super().__init__()
        self.net = net

    def forward(self, x: Tensor, context: Optional[Tensor] = None, mask_index: Optional[int] = None) -> Tensor:
        """``x: (B, n)``, ``context: (B, c)`` or None -> scalar mean NLL in nats."""
        return -self.net(context, mask_index=mask_index).log_prob(x).mean()


# ---- evaluation --------------------------------------------------------------------------------


def bits_per_dim(nats: float, event_size: int) -> float:
    """Nats per example -> bits per dimension: ``nats / (n ln 2)``."""
    return nats / (event_size * math.log(2.0))


def _check_context_rows(data: Tensor, context: Optional[Tensor], what: str) -> None:
    if context is not None and (context.dim() != 2 or context.shape[0] != data.shape[0]):
        raise ValueError(
            f"the {what} context must have one row per {what} row, shape ({data.shape[0]}, c); "
            f"got {tuple(context.shape)}"
        )


@torch.no_grad()
def evaluate_nll(
    net: AutoregressiveModel,
    data: Tensor,
    batch_size: int = 1000,
    info: Optional[DistributedInfo] = None,
    context: Optional[Tensor] = None,
) -> float:
    """Mean negative log-likelihood in nats per example of ``data: (N, n)`` (given
    ``context: (N, c)`` for a conditional model).

    MADE ensembles are scored as their exact mixture. Under a process group each process
    scores rows ``rank::world_size`` and the sums are all-reduced.
    """
    _check_context_rows(data, context, "evaluation")
    info = info or DistributedInfo(device=next(net.parameters()).device)
    was_training = net.training
    net.eval()
    rows = data[info.rank :: info.world_size]
    ctx_rows = None if context is None else context[info.rank :: info.world_size]
    total = 0.0
    unconditional = net() if context is None else None
    for start in range(0, rows.shape[0], batch_size):
        batch = rows[start : start + batch_size].to(info.device)
        d = unconditional if ctx_rows is None else net(ctx_rows[start : start + batch_size].to(info.device))
        total += float(-d.log_prob(batch).double().sum())
    net.train(was_training)
    total, count = _all_sum([total, float(rows.shape[0])], info)
    return total / count


# ---- training ----------------------------------------------------------------------------------


@dataclass
class History:
    """What happened during :func:`train` (losses in nats per example)."""

    train_loss: List[float] = field(default_factory=list)  # mean training loss per epoch
    valid_nll: List[float] = field(default_factory=list)  # validation NLL after each validated epoch
    valid_epochs: List[int] = field(default_factory=list)  # the (1-based) epochs validated
    first_step_loss: float = float("nan")  # the loss of the very first minibatch (global mean)
    best_epoch: int = 0  # 1-based epoch whose parameters were kept
    best_valid_nll: float = float("inf")
    epochs_run: int = 0
    steps: int = 0
    stopped_early: bool = False
    out_of_time: bool = False  # stopped by ``max_seconds``
    seconds: float = 0.0

    def to_dict(self) -> Dict[str, Any]:
        return asdict(self)


def _check_positive(name: str, value: Any, kind: type = int) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and value > 0
    if not ok or (kind is int and not isinstance(value, int)):
        raise ValueError(f"{name} must be a positive {kind.__name__}, got {value!r}")


def train(
    net: AutoregressiveModel,
    train_data: Tensor,
    valid_data: Tensor,
    *,
    train_context: Optional[Tensor] = None,
    valid_context: Optional[Tensor] = None,
    epochs: int = 50,
    batch_size: int = 100,
    lr: float = 1e-3,
    patience: Optional[int] = 10,
    seed: int = 0,
    info: Optional[DistributedInfo] = None,
    progress: bool = True,
    eval_batch_size: int = 1000,
    weight_decay: float = 0.0,
    valid_every: int = 1,
    lr_decay: float = 1.0,
    max_seconds: Optional[float] = None,
) -> History:
    """Fit ``net`` by maximum likelihood with Adam; keep the parameters of the best validation epoch.

    The one training loop of the package: the ``pyro-ar`` program and every benchmark use it.

    Args:
        net: the model (already on ``info.device``); trained in place. Any module with the
            calls of :class:`~pyro_ar.models.AutoregressiveModel` that training uses works:
            ``num_masks`` and ``net(context, mask_index=...)`` returning a distribution
            (``benchmarks/`` wraps a peer library's model this way).
        train_data, valid_data: ``(N, n)`` values prepared for the model's head.
        train_context, valid_context: ``(N, c)`` contexts of those rows, for a conditional model.
        epochs: the most epochs to run.
        batch_size: the *global* minibatch size (divisible by the number of processes).
        lr: Adam's learning rate.
        patience: stop after this many epochs without a better validation NLL (``None``:
            never stop early; the best validated parameters are still kept).
        seed: seeds the shuffling and, for MADE ensembles, the mask drawn at each step
            (the same on every process).
        info: from :func:`setup_distributed`; ``None`` for one process on the model's device.
        progress: show a tqdm bar (main process only) with the running loss.
        eval_batch_size: rows per batch of the validation passes.
        weight_decay: Adam's L2 penalty (``torch.optim.Adam``'s ``weight_decay``).
        valid_every: validate after every ``valid_every``-th epoch and after the last one
            (patience still counts epochs).
        lr_decay: the learning rate is multiplied by this over every epoch, smoothly (step
            ``s`` of an epoch of ``S`` steps uses ``lr * lr_decay ** (epoch - 1 + s / S)``);
            in ``(0, 1]``, 1 keeps it constant.
        max_seconds: a training time budget: once it is spent, the current epoch ends after
            its current step, is validated, and training stops (``None``: no budget).

    Returns:
        a :class:`History`.
    """
    for name, value in (("epochs", epochs), ("batch_size", batch_size), ("valid_every", valid_every)):
        _check_positive(name, value)
    if patience is not None:
        _check_positive("patience", patience)
    _check_positive("lr", lr, float)
    if isinstance(lr_decay, bool) or not isinstance(lr_decay, (int, float)) or not 0 < lr_decay <= 1:
        raise ValueError(f"lr_decay must be a number in (0, 1], got {lr_decay!r}")
    if max_seconds is not None:
        _check_positive("max_seconds", max_seconds, float)
    if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)) or not 0 <= weight_decay < math.inf:
        raise ValueError(f"weight_decay must be a finite number >= 0, got {weight_decay!r}")
    _check_context_rows(train_data, train_context, "training")
    _check_context_rows(valid_data, valid_context, "validation")
    info = info or DistributedInfo(device=next(net.parameters()).device)
    if batch_size % info.world_size:
        raise ValueError(f"batch_size={batch_size} must be divisible by the number of processes ({info.world_size})")
    local_batch = batch_size // info.world_size
    n_train = train_data.shape[0]
    if n_train < info.world_size:
        raise ValueError(f"{n_train} training rows cannot be shared by {info.world_size} processes")

    loss_module: nn.Module = NegativeLogLikelihood(net)
    if info.enabled:
        device_ids = [info.device] if info.device.type == "cuda" else None
        loss_module = DistributedDataParallel(loss_module, device_ids=device_ids)
    optimizer = torch.optim.Adam(net.parameters(), lr=lr, weight_decay=weight_decay)
    sampler = DistributedSampler(range(n_train), num_replicas=info.world_size, rank=info.rank, shuffle=True, seed=seed)
    mask_gen = torch.Generator().manual_seed(seed + 1)
    num_masks = net.num_masks
    steps_per_epoch = math.ceil(len(sampler) / local_batch)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: lr_decay ** (step / steps_per_epoch))
    out_of_time = False
    history = History()
    best_state = copy.deepcopy(net.state_dict())
    start_time = time.perf_counter()
    bar = tqdm(
        total=epochs * steps_per_epoch,
        desc="train",
        unit="step",
        disable=not (progress and info.is_main),
        file=sys.stderr,
        dynamic_ncols=True,
        mininterval=0.1 if sys.stderr.isatty() else 5.0,  # keep logs short when not a terminal
    )
    net.train()
    try:
        for epoch in range(1, epochs + 1):
            sampler.set_epoch(epoch)
            order = torch.tensor(list(iter(sampler)), dtype=torch.long)
            loss_sum, loss_count = 0.0, 0
            for start in range(0, order.numel(), local_batch):
                rows = order[start : start + local_batch]
                batch = train_data[rows].to(info.device)
                context = None if train_context is None else train_context[rows].to(info.device)
                mask_index = int(torch.randint(num_masks, (), generator=mask_gen)) if num_masks > 1 else None
                loss = loss_module(batch, context, mask_index)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                schedule.step()
                # The global mean loss (ranks hold equal shards), so that every rank sees the same
                # value and a divergence stops all of them at once instead of leaving some waiting;
                # in the same reduction, whether the time budget is spent by rank 0's clock, so
                # that every rank stops at the same step.
                spent = max_seconds is not None and info.is_main and time.perf_counter() - start_time >= max_seconds
                total_loss, spent_anywhere = _all_sum([float(loss.detach()), float(spent)], info)
                value = total_loss / info.world_size
                if not math.isfinite(value):
                    raise FloatingPointError(f"the training loss became {value} at epoch {epoch}; try a smaller --lr")
                if history.steps == 0:
                    history.first_step_loss = value
                history.steps += 1
                loss_sum += value * batch.shape[0]
                loss_count += batch.shape[0]
                bar.update(1)
                bar.set_postfix(loss=f"{loss_sum / loss_count:.3f}", refresh=False)
                if spent_anywhere:
                    out_of_time = True
                    break
            total, count = _all_sum([loss_sum, float(loss_count)], info)
            history.train_loss.append(total / count)
            history.epochs_run = epoch
            if epoch % valid_every and epoch != epochs and not out_of_time:
                continue
            valid = evaluate_nll(net, valid_data, eval_batch_size, info, context=valid_context)
            if not math.isfinite(valid):
                raise FloatingPointError(
                    f"the validation NLL became {valid} at epoch {epoch}: the validation split holds values the "
                    "model cannot score"
                )
            history.valid_nll.append(valid)
            history.valid_epochs.append(epoch)
            bar.set_postfix(loss=f"{total / count:.3f}", valid=f"{valid:.3f}", refresh=True)
            if valid < history.best_valid_nll:
                history.best_valid_nll, history.best_epoch = valid, epoch
                best_state = copy.deepcopy(net.state_dict())
            elif patience is not None and epoch - history.best_epoch >= patience:
                history.stopped_early = True
                break
            if out_of_time:
                history.out_of_time = True
                break
    finally:
        bar.close()
    net.load_state_dict(best_state)
    history.seconds = time.perf_counter() - start_time
    return history
