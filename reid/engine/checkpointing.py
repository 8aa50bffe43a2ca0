"""What a trainer writes to and reads from its checkpoints: exact resume, snapshots, reload-best.

A checkpoint is a plain dict (reid.io.run_folder writes it atomically); `last.pt` holds everything
needed to continue bit for bit (optimizers, scheduler, scaler, sampler position, every process's RNG
state), epoch snapshots and `ema.pt` hold the model only.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch

from reid.errors import ReidError
from reid.io.run_folder import load_checkpoint, save_checkpoint

from .distributed import broadcast_module, broadcast_object, gather_objects
from .rng import rng_state, seed_everything, set_rng_state

if TYPE_CHECKING:  # annotations only
    from .trainer import Trainer


def training_state(t: Trainer, epoch: int, step: int = 0, totals: dict | None = None) -> dict:
    """Everything needed to continue: `epoch` epochs done plus `step` steps of the next one.
    Collective under DDP (gathers every process's RNG state): call it on all ranks."""
    rngs = gather_objects(rng_state(), t.dist)
    state = {
        "model": t.model.state_dict(),
        "criterion": t.criterion.state_dict(),
        "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict(),
        "scaler": t.scaler.state_dict(),
        "epoch": epoch,
        "step": step,
        "epoch_totals": dict(totals or {}),
        "global_step": t.global_step,
        "metrics": t.last_metrics,
        "history": t.history,
        "best_score": t.best_score,
        "best_epoch": t.best_epoch,
        **t.meta,
        "world_size": t.dist.world_size,
        "rng": rngs[0],
        "rng_per_rank": rngs,
    }
    if t.warmup is not None:
        state["warmup_optimizer"] = t.warmup.optimizer.state_dict()
    if t.sampler is not None:
        state["sampler"] = t.sampler.state_dict()
    if t.ema is not None:
        state["ema"] = t.ema.state_dict()
    return state


def model_snapshot(t: Trainer, epoch: int) -> dict:
    """The model-only layout (model, config, num_classes, preprocess, epoch, metrics, ema)."""
    state = {"model": t.model.state_dict(), "epoch": epoch, "metrics": t.last_metrics, **t.meta}
    if t.ema is not None:
        state["ema"] = t.ema.state_dict()
    return state


def save(t: Trainer, state: dict, name: str | int) -> None:
    """checkpoints/<name>.pt ("last", "best", "ema") or the epoch_XXX.pt snapshot of an epoch, by rank 0.

    Weights that are not finite are never written: the previous file stays intact.
    """
    if t.run is None:
        return
    if t.is_main:
        if not _finite_weights(state["model"]):
            raise ReidError(f"step {t.global_step}: the model weights are not finite; {t.run.checkpoint(name).name} "
                            f"was not overwritten. {t._advice()}")  # fmt: skip
        save_checkpoint(state, t.run.checkpoint(name))
    if name == "last":
        t.last_saved = (state["epoch"], state.get("step", 0))


def _finite_weights(model_state: dict) -> bool:
    """True when every floating-point tensor of a state dict is finite."""
    tensors = [v for v in model_state.values() if isinstance(v, torch.Tensor) and v.is_floating_point()]
    return not tensors or bool(torch.isfinite(torch.nn.utils.get_total_norm(tensors)))


def resume(t: Trainer) -> None:
    """Continue from checkpoints/last.pt of the run folder (end of an epoch or mid-epoch)."""
    state = load_checkpoint(t.run.checkpoint("last"))
    if state["config"] != t.meta.get("config"):
        raise ReidError(f"{t.run.root}: the config differs from the one the run started with")
    t.model.load_state_dict(state["model"])
    t.criterion.load_state_dict(state["criterion"])
    t.optimizer.load_state_dict(state["optimizer"])
    if t.warmup is not None and "warmup_optimizer" in state:
        t.warmup.optimizer.load_state_dict(state["warmup_optimizer"])
    t.scheduler.load_state_dict(state["scheduler"])
    t.scaler.load_state_dict(state["scaler"])
    if t.ema is not None and "ema" in state:
        t.ema.load_state_dict(state["ema"])
    t.start_epoch, t.start_step = int(state["epoch"]), int(state.get("step", 0))
    t.epoch_totals = dict(state.get("epoch_totals", {}))
    t.global_step = int(state.get("global_step", 0))
    t.history, t.last_metrics = state["history"], state.get("metrics", {})
    t.best_score, t.best_epoch = state["best_score"], int(state.get("best_epoch", 0))
    if t.sampler is not None:
        t.sampler.load_state_dict(state["sampler"])
    rngs = state.get("rng_per_rank", [state["rng"]])
    if len(rngs) == t.dist.world_size:
        set_rng_state(rngs[t.dist.rank])
    else:
        t.log.warning("resumed with %d processes, saved with %d: RNG states reseeded", t.dist.world_size, len(rngs))
        seed_everything(t.options.seed + 7919 * t.start_epoch + t.dist.rank)
    t.run_log.resume(t.start_epoch)
    t.log.info("resumed at epoch %d step %d", t.start_epoch, t.start_step)


def reload_best(t: Trainer, epoch: int) -> None:
    """The authors' schedule: continue from the best weights so far (the lr drop is in the schedule)."""
    path = t.run.checkpoint("best") if t.run is not None else None
    found = broadcast_object(path is not None and path.is_file() if t.is_main else None, t.dist)
    if not found:
        t.log.warning("epoch %d: no best.pt yet, only the learning rate drops", epoch + 1)
        return
    if t.is_main:
        best = load_checkpoint(path)
        t.model.load_state_dict(best["model"])
        t.criterion.load_state_dict(best["criterion"])
        key = t.evaluator.select_key if t.evaluator is not None else "mAP"
        score = best["best_score"]
        t.log.info("epoch %d: reloaded best.pt (epoch %d, val %s %.4f)", epoch + 1, best["epoch"], key, score)
    broadcast_module(t.model, t.dist)
    broadcast_module(t.criterion, t.dist)
