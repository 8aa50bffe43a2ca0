"""`Trainer.from_config`: every object a run needs, built from a run config in a fixed, seeded order.

Order matters for bit-for-bit reproducibility: seed, data set, validation split, loader, model,
loss, optimizers, EMA, DDP wrap, then a per-process reseed for the training randomness.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

import torch
from tqdm import tqdm

from reid.config import Config, check_options, save_config
from reid.data.datasets import build_dataset
from reid.data.datasets.integrity import verify_splits
from reid.data.loaders import train_loader
from reid.data.transforms import TrainTransform
from reid.errors import ConfigError, ReidError
from reid.evaluation.protocol import protocol_for
from reid.io.run_folder import RunFolder
from reid.losses import build_loss
from reid.models import build_model
from reid.models.backbones import check_backbone_name
from reid.models.pretrained import preprocess_for

from .distributed import broadcast_object, init_distributed
from .evaluator import Evaluator
from .options import resolve_device
from .precision import amp_dtype
from .rng import seed_everything
from .schedule import build_optimizer, build_scheduler
from .validation import carve_validation
from .warmup import ClassifierWarmup, label_smoothing


def trainer_from_config(cls, config: Config, run_dir: str | Path | None, progress: bool, resume: bool):
    """A `cls` (Trainer) for `config`; the run folder is created (or resumed) by rank 0 only."""
    cfg, data = config.train, config.data
    wanted = resolve_device(cfg.device)
    check_before_data(config, wanted)
    dist = init_distributed(cfg.dist_backend, use_cuda=wanted.type == "cuda")
    device = torch.device("cuda", dist.local_rank) if dist.enabled and wanted.type == "cuda" else wanted
    if cfg.deterministic:
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        torch.use_deterministic_algorithms(True)
        torch.backends.cudnn.benchmark = False
    elif device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    run = _run_folder(config, run_dir, resume, dist)

    seed_everything(cfg.seed)
    dataset = build_dataset(data.dataset, data.root, skip_bad=data.skip_bad, verify_images=data.verify_images)
    if not data.verify_images:  # a cheap check up front: the evaluation after the last epoch must not fail
        verify_splits(dataset, skip_bad=data.skip_bad)
    protocol = protocol_for(dataset.name)  # retrieval sets: whole held-out classes, all-vs-all
    train, val_query, val_gallery = carve_validation(
        dataset.train, data.val_identities, cfg.seed, all_vs_all=protocol.retrieval
    )
    num_classes = len({r.pid for r in train})
    pre = preprocess_for(config)  # the backbone's own mean/std unless data.mean/std say otherwise
    transform = TrainTransform(pre, flip=data.flip, pad=data.pad, erasing=data.random_erasing)
    try:
        loader = train_loader(
            train, transform, data.identities_per_batch, data.instances_per_identity, cfg.seed, data.workers,
            rank=dist.rank, world_size=dist.world_size, pin_memory=device.type == "cuda", skip_bad=data.skip_bad,
        )  # fmt: skip
    except ValueError as exc:
        raise ConfigError(f"data.identities_per_batch: {exc}") from None
    model = build_model(config.model, num_classes).to(device)
    if cfg.channels_last and device.type == "cuda":
        model = model.to(memory_format=torch.channels_last)
    criterion = build_loss(config.loss, num_classes).to(device)
    params = [p for p in list(model.parameters()) + list(criterion.parameters()) if p.requires_grad]
    optimizer = build_optimizer(params, config.optim)
    scheduler = build_scheduler(optimizer, config.optim, cfg.epochs)
    warmup = None
    if cfg.classifier_warmup_epochs > 0:
        warmup_optimizer = build_optimizer(model.classifier.parameters(), config.optim)
        warmup = ClassifierWarmup(warmup_optimizer, cfg.classifier_warmup_epochs, label_smoothing(config.loss))
    evaluator = Evaluator(
        dataset.query, dataset.gallery, pre, (val_query, val_gallery), cfg.batch_size_test, protocol=protocol
    )
    meta = {"config": config.to_dict(), "num_classes": num_classes, "preprocess": pre.to_dict()}
    trainer = cls(
        model, criterion, loader, optimizer, scheduler, evaluator=evaluator, run_dir=run.root, device=device,
        options=cfg, reload_best_at=config.optim.reload_best_at, warmup=warmup, dist=dist, meta=meta,
        progress=progress,
    )  # fmt: skip
    trainer._owns_group = dist.enabled
    seed_everything(cfg.seed + dist.rank)  # training randomness (anchors) differs per process
    if dist.is_main and model.backbone.pretrained_note:
        trainer.log.info("%s", model.backbone.pretrained_note)
        tqdm.write(model.backbone.pretrained_note)
    for warning in dataset.warnings if dist.is_main else []:
        trainer.log.warning("%s", warning)
        tqdm.write(f"warning: {warning}")
    if resume and run.checkpoint("last").is_file():
        trainer.resume()
    trainer.log.info(
        "dataset %s: %d train images of %d identities, %d val ids, %d query, %d gallery; device %s, "
        "%d process(es), amp %s",
        data.dataset, len(train), num_classes, data.val_identities,
        len(dataset.query), len(dataset.gallery), device, dist.world_size, trainer.amp_dtype,
    )  # fmt: skip
    return trainer


def check_before_data(config: Config, device: torch.device) -> None:
    """Every config error that needs no data, raised before the run folder, the RNG or any data is touched:
    option combinations, AMP on this device, the backbone name, loss names and options, optimizer and
    schedule. The loss and optimizer are built once on stand-ins (2 classes, 1 parameter) and dropped:
    their constructors are where their options are checked."""
    check_options(config)
    amp_dtype(config.train.amp, device)
    check_backbone_name(config.model.backbone)
    build_loss(config.loss, num_classes=2)
    stand_in = build_optimizer([torch.nn.Parameter(torch.zeros(1))], config.optim)
    build_scheduler(stand_in, config.optim, config.train.epochs)


def _run_folder(config: Config, run_dir: str | Path | None, resume: bool, dist) -> RunFolder:
    """The run folder (named train.output_dir/<run_name or dataset-time> by default), checked and created."""
    cfg = config.train
    if dist.is_main and run_dir is None:
        name = cfg.run_name or f"{config.data.dataset}-{datetime.now():%Y%m%d-%H%M%S}"
        run_dir = Path(cfg.output_dir) / name
    run = RunFolder(broadcast_object(str(run_dir) if run_dir is not None else None, dist))
    problem = None
    if dist.is_main and not resume and run.holds_run():
        problem = f"{run.root}: already holds a run; use --resume {run.root} or another --output"
    problem = broadcast_object(problem, dist)
    if problem:
        raise ReidError(problem)
    if dist.is_main:
        run.create()
        save_config(config, run.config)
    return run
