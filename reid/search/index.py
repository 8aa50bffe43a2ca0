"""Gallery indexes for large-scale search: a thin layer over faiss.

faiss does the searching; this module only chooses an index layout per kind,
keeps the gallery labels beside it, writes one self-contained file atomically
and refuses queries from another model. Distances are squared Euclidean on
L2-normalised features (2 - 2 cos), the distances re-ranking uses.

Kinds: "flat" (exact), "ivf" (inverted lists over k-means cells, nprobe cells
searched), "hnsw" (graph, efSearch), "ivfpq" (inverted lists with product-quantised
codes: 16-32x smaller, approximate distances).

The file is HDF5: the serialised faiss index (uint8), gallery pids, camids and
paths, and attributes: kind, dim, count, the gallery feature file's fingerprint
and a model key (a hash of the weights, preprocessing and test-time options
recorded in the feature file) that query features must match.
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from reid.errors import DataError
from reid.io.atomic import atomic_path

KINDS = ("flat", "ivf", "hnsw", "ivfpq")
# k-means training points per inverted list / cell (faiss warns below 39): at a million generated points
# with ~20 per identity, 25 a cell left about one identity in seven without a training point, and the
# cells' k-NN lists found 0.456 of the 21 nearest; 64 a cell found 0.669 (docs/scale.md)
TRAIN_POINTS_PER_CELL = 64
INDEX_FORMAT = 1
_MODEL_ATTRS = ("weights", "preprocess", "test_time_options", "backbone")


def _faiss():
    try:
        import faiss
    except ImportError:  # pragma: no cover - depends on the environment
        raise DataError(
            "faiss is not installed: pip install faiss-cpu (or faiss-gpu), or `pip install reid[search]`"
        ) from None
    return faiss


def model_key(attrs: dict[str, Any]) -> str | None:
    """A hash of what fixes the embedding space (weights, preprocessing, test-time options), None if unknown."""
    parts = {k: attrs[k] for k in _MODEL_ATTRS if k in attrs}
    if "weights" not in parts:
        return None
    text = json.dumps({k: str(v) for k, v in parts.items()}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _as_float32(features: np.ndarray, normalize: bool) -> np.ndarray:
    x = np.ascontiguousarray(features, dtype=np.float32)
    if x.ndim != 2 or x.shape[0] == 0:
        raise DataError(f"features must be a non-empty (N, D) array, got shape {x.shape}")
    if not np.isfinite(x).all():
        raise DataError("features contain NaN or infinity")
    if normalize:
        x = x / np.maximum(np.linalg.norm(x, axis=1, keepdims=True), 1e-12)
    return x


def _pq_subquantizers(dim: int) -> int:
    """Largest m <= dim / 4 dividing dim (and at most 64): about 4-8 dimensions per 8-bit code."""
    return max(m for m in range(1, min(64, max(1, dim // 4)) + 1) if dim % m == 0)


@dataclass
class GalleryIndex:
    """A faiss index over gallery features with the gallery's labels and provenance."""

    index: Any
    kind: str
    pids: np.ndarray
    camids: np.ndarray
    paths: list[str]
    attrs: dict[str, Any] = field(default_factory=dict)

    @property
    def dim(self) -> int:
        return int(self.index.d)

    def __len__(self) -> int:
        return int(self.index.ntotal)

    @classmethod
    def build(
        cls,
        features: np.ndarray,
        kind: str = "flat",
        *,
        pids: np.ndarray | None = None,
        camids: np.ndarray | None = None,
        paths: list[str] | None = None,
        attrs: dict[str, Any] | None = None,
        normalize: bool = True,
        nlist: int | None = None,
        train_size: int | None = None,
        seed: int = 0,
    ) -> GalleryIndex:
        """Index (N, D) gallery features. nlist: inverted lists for ivf/ivfpq (default ~4 sqrt(N));
        train_size: points their k-means trains on (default TRAIN_POINTS_PER_CELL a list)."""
        faiss = _faiss()
        if kind not in KINDS:
            raise DataError(f"unknown index kind {kind!r}: use one of {', '.join(KINDS)}")
        x = _as_float32(features, normalize)
        n, dim = x.shape
        if kind == "flat":
            index = faiss.IndexFlatL2(dim)
        elif kind == "hnsw":
            index = faiss.IndexHNSWFlat(dim, 32)
            index.hnsw.efConstruction = 80
            index.hnsw.efSearch = 128
        else:
            cells = nlist or int(min(max(1, 4 * math.sqrt(n)), max(1, n // 39)))
            quantizer = faiss.IndexFlatL2(dim)
            if kind == "ivf":
                index = faiss.IndexIVFFlat(quantizer, dim, cells)
            else:
                bits = 8 if n >= 256 * 39 else max(1, min(8, int(math.log2(max(2, n // 39)))))
                index = faiss.IndexIVFPQ(quantizer, dim, cells, _pq_subquantizers(dim), bits)
            train_size = int(train_size or TRAIN_POINTS_PER_CELL * cells)
            rng = np.random.default_rng(seed)
            sample = x[np.sort(rng.choice(n, train_size, replace=False))] if n > train_size else x
            index.train(sample)
            index.nprobe = min(cells, 16)
        index.add(x)
        labels = {
            "pids": np.full(n, -1, np.int64) if pids is None else np.asarray(pids, np.int64),
            "camids": np.full(n, -1, np.int64) if camids is None else np.asarray(camids, np.int64),
        }
        paths = [""] * n if paths is None else list(paths)
        if not (len(labels["pids"]) == len(labels["camids"]) == len(paths) == n):
            raise DataError("pids, camids and paths must have one entry per gallery feature")
        meta = dict(attrs or {})
        meta.update(kind=kind, normalize=bool(normalize))
        return cls(index, kind, labels["pids"], labels["camids"], paths, meta)

    def search(
        self,
        queries: np.ndarray,
        k: int = 100,
        *,
        query_attrs: dict[str, Any] | None = None,
        nprobe: int | None = None,
        ef_search: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(Q, k) squared distances and gallery indices of the k nearest, nearest first (-1 where fewer)."""
        self.check_compatible(query_attrs or {}, int(np.shape(queries)[-1]))
        if k < 1:
            raise DataError(f"k must be >= 1, got {k}")
        x = _as_float32(queries, bool(self.attrs.get("normalize", True)))
        faiss = _faiss()
        if nprobe is not None and hasattr(self.index, "nprobe"):
            self.index.nprobe = int(nprobe)
        if ef_search is not None and isinstance(self.index, faiss.IndexHNSW):
            self.index.hnsw.efSearch = int(ef_search)
        elif isinstance(self.index, faiss.IndexHNSW):
            self.index.hnsw.efSearch = max(self.index.hnsw.efSearch, 2 * k)
        dist, idx = self.index.search(x, min(k, len(self)))
        return dist, idx

    def check_compatible(self, query_attrs: dict[str, Any], dim: int) -> None:
        """Raise a one-line DataError when queries come from another model or have another dimension."""
        if dim != self.dim:
            raise DataError(f"query features have {dim} dimensions but the index holds {self.dim}-d features")
        mine, theirs = self.attrs.get("model_key"), model_key(query_attrs)
        if mine and theirs and mine != theirs:
            raise DataError(
                f"query features come from another model than the index (model key {theirs} != {mine}): "
                "extract both with the same checkpoint and options"
            )

    def save(self, path: str | Path) -> Path:
        """Write one self-contained file atomically (the index, the labels and the attributes)."""
        faiss = _faiss()
        blob = faiss.serialize_index(self.index)
        with atomic_path(path) as tmp, h5py.File(tmp, "w") as h5:
            h5.create_dataset("index", data=np.asarray(blob, np.uint8))
            h5.create_dataset("pids", data=self.pids)
            h5.create_dataset("camids", data=self.camids)
            h5.create_dataset("paths", data=np.array(self.paths, dtype=h5py.string_dtype()))
            h5.attrs["format"] = "reid-faiss-index"
            h5.attrs["format_version"] = INDEX_FORMAT
            for key, value in self.attrs.items():
                h5.attrs[key] = value if isinstance(value, (str, int, float, bool)) else json.dumps(value)
        return Path(path)

    @classmethod
    def load(cls, path: str | Path) -> GalleryIndex:
        path = Path(path)
        if not path.is_file():
            raise DataError(f"{path}: index file not found")
        faiss = _faiss()
        try:
            with h5py.File(path, "r") as h5:
                if h5.attrs.get("format") != "reid-faiss-index":
                    raise DataError(f"{path}: not a reid index file (build one with `reid index build`)")
                index = faiss.deserialize_index(h5["index"][()])
                attrs = {k: (v.item() if hasattr(v, "item") else v) for k, v in h5.attrs.items()}
                paths = [p.decode() if isinstance(p, bytes) else str(p) for p in h5["paths"][()]]
                return cls(index, str(attrs["kind"]), h5["pids"][()], h5["camids"][()], paths, attrs)
        except OSError as exc:
            raise DataError(f"{path}: not a readable index file ({exc})") from None


def build_from_feature_file(features_path: str | Path, kind: str = "flat", **kwargs: Any) -> GalleryIndex:
    """Index a reid feature file, recording its fingerprint and model key."""
    from reid.io.features import read_features

    fs = read_features(features_path)
    attrs = {
        "features_file": str(features_path),
        "features_fingerprint": str(fs.attrs.get("fingerprint", _content_hash(fs.features))),
        "model_key": model_key(fs.attrs) or "",
    }
    return GalleryIndex.build(fs.features, kind, pids=fs.pids, camids=fs.camids, paths=fs.paths, attrs=attrs, **kwargs)


def _content_hash(x: np.ndarray) -> str:
    """Fingerprint of features that carry none: a hash of their bytes."""
    return "sha256:" + hashlib.sha256(np.ascontiguousarray(x).tobytes()).hexdigest()[:16]
