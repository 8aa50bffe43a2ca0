"""Which evaluation protocol a data set uses, and its metrics from features or distances.

- "reid" (Market-1501, DukeMTMC-reID, MSMT17, CUHK03-NP, synthetic, custom): queries
  against a gallery, same identity and camera removed; CMC, mAP, mINP (reid.evaluation.ranking).
- "all-vs-all" (CUB-200-2011, Cars196, SOP): classes disjoint from training; every test
  image queries all the others; Recall@K, MAP@R, k-means NMI.
- "query-gallery" (In-Shop): the release's queries against its gallery; the same metrics.

The retrieval protocols also carry the re-ranking defaults used on these benchmarks
(k1 50, k2 20, lambda 0.94) and the metric that selects checkpoints (Recall@1).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from .retrieval import RetrievalResult, evaluate_query_gallery, evaluate_retrieval

# NMI of SOP and In-Shop: k-means with one cluster per class on whole classes drawn up to this many images
NMI_SAMPLE_IMAGES = 10_000
# the largest dense re-ranked matrix (float32 elements) a retrieval test builds: 2^31 = 8 GiB
RERANK_MAX_ELEMENTS = 2**31


@dataclass(frozen=True)
class Protocol:
    """How a data set is evaluated. ks: Recall@K cut-offs (CMC ranks for re-ID);
    nmi_max_images: NMI on whole classes up to this many images (None: all; 0: skipped);
    k1, k2, lambda_value: re-ranking defaults; select_key: the metric that picks best.pt."""

    name: str
    ks: tuple[int, ...]
    nmi_max_images: int | None = None
    k1: int = 20
    k2: int = 6
    lambda_value: float = 0.3
    select_key: str = "mAP"

    @property
    def retrieval(self) -> bool:
        """True for the class-disjoint retrieval protocols (no cameras involved)."""
        return self.name != "reid"


REID = Protocol("reid", (1, 5, 10))
_SMALL = Protocol("all-vs-all", (1, 2, 4, 8), None, 50, 20, 0.94, "recall@1")
PROTOCOLS: dict[str, Protocol] = {
    "cub200": _SMALL,
    "cars196": _SMALL,
    "sop": Protocol("all-vs-all", (1, 10, 100, 1000), NMI_SAMPLE_IMAGES, 50, 20, 0.94, "recall@1"),
    "inshop": Protocol("query-gallery", (1, 10, 20, 30, 40, 50), NMI_SAMPLE_IMAGES, 50, 20, 0.94, "recall@1"),
}


def protocol_for(dataset: str) -> Protocol:
    """The protocol of data set `dataset` (a build_dataset name); re-ID for any other name."""
    return PROTOCOLS.get(dataset, REID)


def check_rerank_size(num_query: int, num_gallery: int, max_elements: int = RERANK_MAX_ELEMENTS) -> None:
    """Refuse (ValueError, one line) a re-ranked matrix larger than `max_elements` float32 values:
    re-ranking returns it dense, and the all-vs-all protocol makes it N x N (SOP: 14.6 GB)."""
    elements = num_query * num_gallery
    if elements > max_elements:
        raise ValueError(
            f"re-ranking {num_query:,} x {num_gallery:,} would build a dense {elements * 4 / 2**30:.1f} GiB "
            f"matrix (limit {max_elements * 4 / 2**30:.0f} GiB); evaluate without re-ranking on this data set"
        )


def retrieval_metrics(
    protocol: Protocol,
    q_feats,
    q_labels,
    g_feats=None,
    g_labels=None,
    metric: str = "cosine",
    distances=None,
    with_nmi: bool = True,
    seed: int = 0,
    ks: Sequence[int] | None = None,
) -> RetrievalResult:
    """Recall@K, MAP@R and NMI under `protocol` ("all-vs-all": the query features are the
    whole test set and the gallery arguments are ignored; "query-gallery": both needed).

    distances: optional dense (Q, G) matrix (e.g. re-ranked) used for the ranking instead of
    the features' chunked distances; NMI always uses the features.
    """
    ks = tuple(ks or protocol.ks)
    common = dict(metric=metric, with_nmi=with_nmi, seed=seed, distances=distances)
    if protocol.name == "all-vs-all":
        return evaluate_retrieval(q_feats, q_labels, ks, nmi_max_images=protocol.nmi_max_images, **common)
    if protocol.name == "query-gallery":
        if g_feats is None or g_labels is None:
            raise ValueError("the query-gallery protocol needs gallery features and labels")
        return evaluate_query_gallery(
            q_feats, q_labels, g_feats, g_labels, ks, nmi_max_images=protocol.nmi_max_images, **common
        )
    raise ValueError(f"protocol {protocol.name!r} is not a retrieval protocol (use reid.evaluation.evaluate_rank)")
