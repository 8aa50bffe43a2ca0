"""The result file of `reid search`: the k nearest gallery rows of every query, with their labels."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from reid.io.atomic import atomic_path
from reid.io.features import FeatureSet

from .index import GalleryIndex


def write_search_results(
    out: str | Path,
    gallery: GalleryIndex,
    queries: FeatureSet,
    dist: np.ndarray,
    idx: np.ndarray,
    index_file: str | Path,
    query_file: str | Path,
) -> Path:
    """HDF5 (atomic): indices, squared distances, the neighbours' pids / camids (-1 where an index
    returned no neighbour), the queries' labels and paths, and which index and query file made them."""
    import h5py

    safe = np.where(idx >= 0, idx, 0)
    with atomic_path(out) as tmp, h5py.File(tmp, "w") as h5:
        h5.create_dataset("indices", data=idx.astype(np.int64))
        h5.create_dataset("distances", data=dist.astype(np.float32))
        h5.create_dataset("pids", data=np.where(idx >= 0, gallery.pids[safe], -1))
        h5.create_dataset("camids", data=np.where(idx >= 0, gallery.camids[safe], -1))
        h5.create_dataset("query_pids", data=np.asarray(queries.pids, np.int64))
        h5.create_dataset("query_camids", data=np.asarray(queries.camids, np.int64))
        h5.create_dataset("query_paths", data=np.array(queries.paths, dtype=h5py.string_dtype()))
        h5.attrs.update(index=str(index_file), query=str(query_file), kind=gallery.kind, k=int(idx.shape[1]))
        h5.attrs["distance"] = "squared euclidean of L2-normalised features"
    return Path(out)
