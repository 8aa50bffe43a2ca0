"""Typed run configuration: dataclasses, YAML files and dotted `key=value` overrides.

The `test:` section is reid.test_time.TestConfig, the one schema of the test-time options.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from reid.config_fields import build_section, load_yaml, spec
from reid.errors import ConfigError
from reid.io.atomic import write_text
from reid.io.fingerprint import canonical_json, stable_hash
from reid.test_time import TestConfig

__all__ = ["Config", "DataConfig", "ModelConfig", "OptimConfig", "TestConfig", "TrainConfig", "load_config"]


@dataclass
class DataConfig:
    dataset: str = "synthetic"
    root: str = "datasets"
    height: int = spec(256, min=1)
    width: int = spec(128, min=1)
    identities_per_batch: int = spec(16, min=1)  # P
    instances_per_identity: int = spec(4, min=1)  # K
    workers: int = spec(2, min=0)
    flip: bool = True
    pad: int = spec(10, min=0)
    random_erasing: float = spec(0.5, min=0.0, max=1.0)
    skip_bad: bool = False  # unreadable images are skipped (counted) instead of stopping the run
    verify_images: bool = False  # decode every image at load (slow); query/gallery are always decoded up front
    val_identities: int = spec(0, min=0)  # carved from the training identities for model selection
    # input normalisation, 3 numbers each; empty: what the backbone's ImageNet weights expect (timm's config)
    mean: list[float] = spec(factory=list)
    std: list[float] = spec(factory=list, above=0.0)


@dataclass
class ModelConfig:
    backbone: str = "resnet50"  # torchvision resnet18/34/50/101, or "timm:<name>"
    pretrained: str | bool = False  # True: ImageNet weights (download); str: local file
    last_stride: int = spec(1, choices=(1, 2))
    pooling: str = spec("avg", choices=("avg", "max", "gem"))
    neck: str = spec("bnneck", choices=("bnneck", "none"))


@dataclass
class OptimConfig:
    name: str = spec("adam", choices=("adam", "radam", "sgd", "adamw"))
    lr: float = spec(3.5e-4, above=0.0)
    weight_decay: float = spec(5e-4, min=0.0)
    momentum: float = spec(0.9, min=0.0, max=1.0)
    scheduler: str = spec("multistep", choices=("multistep", "cosine", "constant"))
    milestones: list[int] = spec(factory=lambda: [40, 70], min=0)
    gamma: float = spec(0.1, above=0.0)
    warmup_epochs: int = spec(0, min=0)
    warmup_factor: float = spec(0.01, above=0.0, max=1.0)
    # the Group Loss authors' schedule: before these (1-based) epochs, reload best.pt and
    # multiply the lr by reload_factor (needs data.val_identities > 0 and train.eval_every > 0)
    reload_best_at: list[int] = spec(factory=list, min=1)
    reload_factor: float = spec(0.1, above=0.0)


@dataclass
class TrainConfig:
    epochs: int = spec(120, min=1)
    seed: int = spec(0, min=0, max=2**32 - 1)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    amp: bool | str = spec(
        False, choices=("none", "bf16", "fp16")
    )  # none | bf16 | fp16 (fp16 with a grad scaler); true: bf16 if the GPU has it, else fp16
    channels_last: bool = True  # CUDA only
    grad_clip: float = spec(0.0, min=0.0)  # max global gradient norm; 0: off
    ema_decay: float = spec(0.0, min=0.0, below=1.0)  # exponential moving average of the weights; 0: off
    deterministic: bool = False  # torch.use_deterministic_algorithms (bitwise-repeatable runs and resumes)
    checkpoint_every: int = spec(0, min=0)  # also write last.pt every N steps inside an epoch; 0: once per epoch
    snapshot_epochs: list[int] = spec(factory=list, min=1)  # keep checkpoints/epoch_XXX.pt after these epochs
    gather_embeddings: bool = False  # DDP: Group Loss on the embeddings of all processes, not the local batch
    dist_backend: str = spec("auto", choices=("auto", "nccl", "gloo"))  # auto (nccl on GPU, gloo on CPU) | nccl | gloo
    tensorboard: bool = True  # write runs/<name>/tb when tensorboard is installed
    plots: bool = True  # plots/loss.png and plots/metrics.png
    classifier_warmup_epochs: int = spec(
        0, min=0
    )  # first N epochs: only the classifier learns, plain CE, backbone frozen
    eval_every: int = spec(0, min=0)  # 0: only at the end
    eval_before: bool = False  # also evaluate the untrained model (the demo's baseline)
    batch_size_test: int = spec(128, min=1)
    output_dir: str = "runs"
    run_name: str = ""


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    # loss name -> its options (incl. "weight"); see reid.losses.build_loss
    loss: dict[str, dict[str, Any]] = field(default_factory=lambda: {"group": {}})
    optim: OptimConfig = field(default_factory=OptimConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    test: TestConfig = field(default_factory=TestConfig)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def hash(self) -> str:
        """A short stable hash of the whole configuration (recorded in feature files)."""
        return stable_hash([canonical_json(self.to_dict())], length=12)


def _build(cls: type, values: dict[str, Any], where: str) -> Any:
    return build_section(cls, values, where)


def parse_override(text: str) -> tuple[list[str], Any]:
    """Split `section.key=value` into its key path and a YAML-typed value."""
    if "=" not in text:
        raise ConfigError(f"override {text!r} is not of the form section.key=value")
    key, raw = text.split("=", 1)
    try:
        value = load_yaml(raw) if raw != "" else ""
    except yaml.YAMLError as exc:
        raise ConfigError(f"override {text!r}: value is not valid YAML ({exc.__class__.__name__})") from None
    return key.strip().split("."), value


def apply_overrides(values: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Set dotted keys in a nested dict (a copy), creating loss sub-mappings as needed."""
    values = copy.deepcopy(values)
    for text in overrides:
        path, value = parse_override(text)
        node = values
        for part in path[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {text!r}: {part} is not a section")
        node[path[-1]] = value
    return values


def load_config(path: str | Path | None = None, overrides: list[str] | None = None) -> Config:
    """Read a YAML file (or start from defaults), apply overrides and validate the keys."""
    values: dict[str, Any] = {}
    if path is not None:
        path = Path(path)
        if not path.is_file():
            raise ConfigError(f"{path}: config file not found")
        try:
            values = load_yaml(path.read_text(encoding="utf-8")) or {}
        except ConfigError as exc:
            raise ConfigError(f"{path}: {exc}") from None
        except UnicodeDecodeError:
            raise ConfigError(f"{path}: not a UTF-8 text file") from None
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: not valid YAML: {str(exc).splitlines()[0]}") from None
        if not isinstance(values, dict):
            raise ConfigError(f"{path}: expected a mapping at the top level")
    values = apply_overrides(values, overrides or [])
    if "loss" in values and not isinstance(values["loss"], dict):
        raise ConfigError("loss: expected a mapping of loss name -> options")
    return _build(Config, values, "")


def check_options(config: Config) -> None:
    """Raise a one-line ConfigError for train/optim options that cannot work together.

    The per-field checks run when the config is built; these cross-field ones need the whole
    config, which callers may still change after loading (reid tune does), so the trainer runs
    them first thing, before the run folder, the device or any data is touched.
    """
    cfg, optim = config.train, config.optim
    if optim.reload_best_at and not (config.data.val_identities > 0 and cfg.eval_every > 0):
        raise ConfigError("optim.reload_best_at needs data.val_identities > 0 and train.eval_every > 0")
    bad = [e for e in cfg.snapshot_epochs if not isinstance(e, int) or not 1 <= e <= cfg.epochs]
    if bad:
        raise ConfigError(f"train.snapshot_epochs: {bad} outside 1..train.epochs ({cfg.epochs})")
    for key in ("grad_clip", "checkpoint_every", "eval_every"):
        if getattr(cfg, key) < 0:
            raise ConfigError(f"train.{key} must be >= 0, got {getattr(cfg, key)}")
    if not 0 <= cfg.classifier_warmup_epochs < cfg.epochs:
        raise ConfigError(
            f"train.classifier_warmup_epochs must be in [0, train.epochs), got {cfg.classifier_warmup_epochs}"
        )
    if not 0.0 <= cfg.ema_decay < 1.0:
        raise ConfigError(f"train.ema_decay must be in [0, 1), got {cfg.ema_decay}")


def config_from_dict(values: dict[str, Any]) -> Config:
    """Rebuild a Config from `Config.to_dict()` output (e.g. stored in a checkpoint)."""
    return _build(Config, values, "")


def save_config(config: Config, path: str | Path) -> None:
    write_text(path, yaml.safe_dump(config.to_dict(), sort_keys=False))
