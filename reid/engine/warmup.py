"""The Group Loss authors' classifier warm-up: the first epochs train only the classifier, with plain CE."""

from __future__ import annotations

import torch

from reid.losses import CrossEntropyLabelSmooth

from .distributed import DistInfo, all_reduce_mean
from .precision import autocast


class ClassifierWarmup:
    """For `epochs` epochs the frozen backbone and neck (eval mode, so BatchNorm statistics stay put)
    embed the batch and only `model.classifier` learns, with its own optimizer and smoothed CE."""

    def __init__(self, optimizer: torch.optim.Optimizer, epochs: int, label_smoothing: float = 0.1) -> None:
        self.optimizer, self.epochs = optimizer, int(epochs)
        self.ce = CrossEntropyLabelSmooth(label_smoothing)

    def active(self, epoch: int) -> bool:
        return epoch < self.epochs

    def loss(
        self, model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, dist: DistInfo,
        amp: torch.dtype | None = None,
    ) -> tuple[torch.Tensor, float]:  # fmt: skip
        """The warm-up CE of a batch and its value averaged over processes (no step yet)."""
        model.eval()
        with torch.no_grad(), autocast(images.device, amp):
            embedding = model(images)
        model.train()
        loss = self.ce(model.classifier(embedding.float()), labels)
        return loss, float(all_reduce_mean(loss.detach().double(), dist))

    def apply(self, model: torch.nn.Module, loss: torch.Tensor, dist: DistInfo) -> None:
        """Backward and one step of the classifier's own optimizer."""
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        for param in model.classifier.parameters():  # the DDP wrapper is bypassed: average by hand
            param.grad = all_reduce_mean(param.grad, dist)
        self.optimizer.step()


def label_smoothing(loss_spec: dict) -> float:
    """The smoothing the configured losses use (the warm-up CE follows it), 0.1 by default."""
    for name, key in (("group", "label_smoothing"), ("ce", "epsilon")):
        if key in (loss_spec.get(name) or {}):
            return float(loss_spec[name][key])
    return 0.1
