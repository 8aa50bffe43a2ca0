"""The trainer's evaluation: rank-1/5/10, mAP, mINP of a model on a validation or test split."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

import torch

from reid.data.datasets.base import Record
from reid.data.transforms import Preprocess
from reid.evaluation.protocol import REID, Protocol
from reid.inference.pipeline import evaluate_model, evaluate_model_retrieval
from reid.test_time import DEFAULTS, TestConfig


class Evaluator:
    """Query/gallery splits to evaluate on, through the retrieval pipeline (plain inference by default).

    `val` (query, gallery) carved from the training identities is used for model selection
    when given; `test` is the benchmark's own query/gallery split.
    """

    def __init__(
        self,
        query: Sequence[Record],
        gallery: Sequence[Record],
        pre: Preprocess,
        val: tuple[Sequence[Record], Sequence[Record]] | None = None,
        batch_size: int = 128,
        settings: TestConfig = DEFAULTS,
        protocol: Protocol = REID,
    ) -> None:
        self.splits = {"test": (query, gallery)}
        if val and val[0]:
            self.splits["val"] = val
        self.pre, self.batch_size, self.settings = pre, batch_size, settings
        self.protocol = protocol  # retrieval sets: Recall@K, MAP@R (NMI on the test split only)

    @property
    def select_key(self) -> str:
        """The metric that picks best.pt: mAP for re-ID, Recall@1 for the retrieval sets."""
        return self.protocol.select_key

    @property
    def has_val(self) -> bool:
        return "val" in self.splits

    def __call__(self, model: torch.nn.Module, split: str, device: torch.device, progress: bool = False) -> dict:
        """The metrics dict (rank1, rank5, rank10, mAP, mINP, num_valid, num_skipped) of `model` on `split`."""
        query, gallery = self.splits[split]
        if self.protocol.retrieval:
            protocol = self.protocol if split == "test" else replace(self.protocol, name="all-vs-all")
            return evaluate_model_retrieval(
                model, protocol, query, gallery, self.pre, device, batch_size=self.batch_size,
                settings=self.settings, progress=progress, with_nmi=split == "test",
            ).as_dict()  # fmt: skip
        return evaluate_model(
            model, query, gallery, self.pre, device, batch_size=self.batch_size, workers=0,
            settings=self.settings, progress=progress,
        ).as_dict()  # fmt: skip
