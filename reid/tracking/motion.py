"""Association without appearance, for honest baselines of what re-ID features buy.

deep-sort-realtime's tracker without features ("none") matches only in its IoU stage, which
sees tracks updated in the previous frame: a track missed for two frames is never resumed.
Two stronger motion-only associations on the same Kalman filter and track life cycle:

- "motion": DeepSORT's matching cascade with the motion cost alone (the paper's lambda = 1):
  the squared Mahalanobis distance between a confirmed track's predicted state and a
  detection, gated at the chi-square 95% quantile, youngest misses first; then the IoU stage
  for tentative tracks and tracks missed for one frame. A missed track's uncertainty grows,
  so its gate widens and it can be resumed within `max_age` frames.
- "sort": one IoU assignment between all tracks (Kalman-predicted boxes, however long missed)
  and all detections, as SORT does, with DeepSORT's `n_init` / `max_age` track management.

With appearance, `AppearanceThenSortTracker` keeps DeepSORT's appearance cascade and widens its
IoU stage to every track the cascade left (SORT's stage): a track whose appearance changed (a
turn, an occlusion) can still be resumed by motion, which DeepSORT alone never does after one
missed frame.
"""

from __future__ import annotations

import numpy as np
from deep_sort_realtime.deep_sort import iou_matching, kalman_filter, linear_assignment
from deep_sort_realtime.deep_sort.tracker import Tracker

MOTION_MODES = ("motion", "sort")


class MahalanobisTracker(Tracker):
    """DeepSORT's cascade with the Mahalanobis motion cost instead of the appearance cost."""

    def _match(self, detections):
        dof = 2 if self.gating_only_position else 4
        gate = kalman_filter.chi2inv95[dof]

        def motion_cost(tracks, dets, track_indices, detection_indices):
            measurements = np.asarray([dets[i].to_xyah() for i in detection_indices]).reshape(-1, 4)
            cost = np.empty((len(track_indices), len(detection_indices)))
            for row, t in enumerate(track_indices):
                track = tracks[t]
                cost[row] = self.kf.gating_distance(
                    track.mean, track.covariance, measurements, self.gating_only_position
                )
            return cost

        confirmed = [i for i, t in enumerate(self.tracks) if t.is_confirmed()]
        unconfirmed = [i for i, t in enumerate(self.tracks) if not t.is_confirmed()]
        matches_a, unmatched_a, unmatched_dets = linear_assignment.matching_cascade(
            motion_cost, gate, self.max_age, self.tracks, detections, confirmed
        )
        iou_candidates = unconfirmed + [k for k in unmatched_a if self.tracks[k].time_since_update == 1]
        unmatched_a = [k for k in unmatched_a if self.tracks[k].time_since_update != 1]
        matches_b, unmatched_b, unmatched_dets = linear_assignment.min_cost_matching(
            iou_matching.iou_cost, self.max_iou_distance, self.tracks, detections, iou_candidates, unmatched_dets
        )
        return matches_a + matches_b, list(set(unmatched_a + unmatched_b)), unmatched_dets


def _iou_all(tracks, detections, track_indices, detection_indices):
    """1 - IoU of every track's predicted box (no matter how long missed) with the detections."""
    candidates = np.asarray([detections[i].ltwh for i in detection_indices]).reshape(-1, 4)
    cost = np.empty((len(track_indices), len(detection_indices)))
    for row, t in enumerate(track_indices):
        cost[row] = 1.0 - iou_matching.iou(tracks[t].to_ltwh(), candidates)
    return cost


class SortTracker(Tracker):
    """One IoU assignment over all tracks and detections (SORT), DeepSORT's track management."""

    def _match(self, detections):
        return linear_assignment.min_cost_matching(
            _iou_all, self.max_iou_distance, self.tracks, detections, list(range(len(self.tracks)))
        )


class AppearanceThenSortTracker(Tracker):
    """DeepSORT's appearance cascade for confirmed tracks, then IoU over every track still unmatched."""

    def _match(self, detections):
        matches_a, unmatched_a, unmatched_dets = super()._match(detections)
        # super()'s IoU stage saw tentative tracks and tracks missed for one frame: give the rest the same chance
        rest = [k for k in unmatched_a if self.tracks[k].time_since_update > 1 and self.tracks[k].is_confirmed()]
        matches_b, unmatched_b, unmatched_dets = linear_assignment.min_cost_matching(
            _iou_all, self.max_iou_distance, self.tracks, detections, rest, unmatched_dets
        )
        unmatched = [k for k in unmatched_a if k not in rest] + unmatched_b
        return matches_a + matches_b, unmatched, unmatched_dets


def use_motion_association(deepsort, mode: str) -> None:
    """Swap the Tracker inside a deep_sort_realtime `DeepSort` for another association (same settings).

    mode: "motion" / "sort" (no appearance) or "appearance+sort" (`AppearanceThenSortTracker`).
    """
    classes = {"motion": MahalanobisTracker, "sort": SortTracker, "appearance+sort": AppearanceThenSortTracker}
    if mode not in classes:
        raise ValueError(f"association must be one of {', '.join(classes)}, got {mode!r}")
    old = deepsort.tracker
    deepsort.tracker = classes[mode](
        old.metric,
        max_iou_distance=old.max_iou_distance,
        max_age=old.max_age,
        n_init=old.n_init,
        today=old.today,
        gating_only_position=old.gating_only_position,
    )
    deepsort.tracker.track_class = old.track_class


__all__ = ["MOTION_MODES", "AppearanceThenSortTracker", "MahalanobisTracker", "SortTracker", "use_motion_association"]
