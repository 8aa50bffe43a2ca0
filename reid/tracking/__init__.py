"""Re-ID features inside a multi-object tracker: the per-frame adapter, a DeepSORT runner, metrics,
and re-ID training data cut from tracking ground truth (from_mot).

`embed_detections` is light; the runner needs `deep-sort-realtime` and the metrics
`trackeval` (both installed by `make install`), imported only when used.
"""

from .adapter import BOX_FORMATS, embed_detections, to_xyxy, tracking_extractor

__all__ = ["BOX_FORMATS", "embed_detections", "to_xyxy", "tracking_extractor"]
