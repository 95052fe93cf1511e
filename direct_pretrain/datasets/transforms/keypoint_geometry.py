"""Keypoint geometry shared by every transform that moves or drops keypoints.

Why one module: keypoints must follow the boxes through every geometric step of a pipeline
(resize, flip, crop, the package's reduced decode, aspect crop and resize/crop unit), and
each of those transforms already records what it did in ``homography_matrix`` and drops
instances by indexing ``gt_bboxes_labels``. So instead of re-implementing each transform's
geometry for points, the keypoint-aware transforms here

* read the homography a transform composed (``after @ inverse(before)``) and map the points
  through it, exactly as the transform mapped the boxes' corners;
* swap left/right keypoints (through the dataset's ``flip_indices``) when that map is a
  reflection (negative determinant: horizontal or vertical flip, not the 180 degree
  "diagonal" flip, which keeps handedness);
* mark keypoints that left the image invisible (``v = 0``, detectron2's rule, borders
  inclusive);
* learn which instances survived by temporarily replacing ``gt_bboxes_labels`` with instance
  indices before calling the wrapped transform (every mmdet transform that drops instances
  indexes the labels with the boxes).

Conventions: ``results['gt_keypoints']`` is ``np.float32`` of shape (N, K, 3), ``(x, y, v)``
with COCO visibility ``v`` (0 unlabelled, 1 labelled but occluded, 2 visible), in the
continuous pixel frame of mmdet's boxes (pixel ``i`` covers ``[i, i + 1)``; the dataset adds
0.5 to COCO's integer pixel indices and the metric removes it again, as detectron2 does).
``results['keypoints_homography']`` is the homography the keypoints have followed so far;
:class:`PackKeypointDetInputs` compares it with ``homography_matrix`` to catch a stock
geometric transform that moved the image and boxes but not the keypoints.
"""
import functools
from typing import Callable, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'KeypointPipelineError', 'KEYPOINTS_KEY', 'KEYPOINTS_HOMOGRAPHY_KEY', 'check_flip_indices', 'apply_homography',
    'swap_left_right', 'mark_outside_invisible', 'move_keypoints', 'check_keypoints_followed', 'run_moving_keypoints',
    'moves_keypoints', 'KeypointAwareMixin'
]

KEYPOINTS_KEY = 'gt_keypoints'
KEYPOINTS_HOMOGRAPHY_KEY = 'keypoints_homography'


class KeypointPipelineError(ValueError):
    """Keypoints and the rest of the annotations went out of step in a data pipeline."""


def check_flip_indices(flip_indices: Sequence[int], num_keypoints: int, owner: str) -> Tuple[int, ...]:
    """Validate a left/right permutation: length K, a permutation that is its own inverse."""
    indices = tuple(int(i) for i in flip_indices)
    if len(indices) != num_keypoints or sorted(indices) != list(range(num_keypoints)):
        raise KeypointPipelineError(
            f'{owner}: flip_indices {list(indices)} must be a permutation of 0..{num_keypoints - 1} '
            f'(one entry per keypoint: the index of its left/right mirror, itself for centre points)')
    if any(indices[j] != i for i, j in enumerate(indices)):
        raise KeypointPipelineError(f'{owner}: flip_indices {list(indices)} is not symmetric: if a mirrors to b, '
                                    'b must mirror to a')
    return indices


def apply_homography(keypoints: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """Map (N, K, 3) keypoints' x, y through a 3x3 homography; visibility is kept."""
    out = np.array(keypoints, dtype=np.float32, copy=True)
    if out.size == 0:
        return out
    matrix = np.asarray(matrix, dtype=np.float64)
    xy = out[..., :2].reshape(-1, 2).astype(np.float64)
    moved = np.concatenate([xy, np.ones((len(xy), 1))], axis=1) @ matrix.T
    moved = moved[:, :2] / moved[:, 2:3]
    out[..., :2] = moved.reshape(out.shape[:-1] + (2, )).astype(np.float32)
    return out


def swap_left_right(keypoints: np.ndarray, flip_indices: Sequence[int]) -> np.ndarray:
    """Keypoint ``k`` takes the place of ``flip_indices[k]`` (a mirror image swaps sides)."""
    return np.ascontiguousarray(np.asarray(keypoints)[:, list(flip_indices)])


def mark_outside_invisible(keypoints: np.ndarray, img_shape: Sequence[int]) -> np.ndarray:
    """Set ``v = 0`` for keypoints outside ``[0, w] x [0, h]`` (borders inclusive)."""
    out = np.array(keypoints, dtype=np.float32, copy=True)
    height, width = img_shape[:2]
    inside = (out[..., 0] >= 0) & (out[..., 0] <= width) & (out[..., 1] >= 0) & (out[..., 1] <= height)
    out[..., 2] = np.where(inside, out[..., 2], 0)
    return out


def _flip_indices(results: dict, num_keypoints: int, owner: str) -> Tuple[int, ...]:
    flip_indices = results.get('flip_indices', None)
    if flip_indices is None:
        raise KeypointPipelineError(
            f'{owner}: a mirror transform needs results["flip_indices"] to swap left/right keypoints of '
            f'{results.get("img_path")!r}; CocoKeypointDataset puts the metainfo flip_indices into every sample. '
            'Use that dataset (or add flip_indices to the data info).')
    return check_flip_indices(flip_indices, num_keypoints, owner)


def move_keypoints(results: dict, matrix: np.ndarray, kept: Optional[np.ndarray] = None,
                   owner: str = 'transform') -> None:
    """Update ``results['gt_keypoints']`` after a geometric step that applied ``matrix``.

    Keeps the instances ``kept`` (indices into the keypoints before the step), maps the points,
    swaps left/right when ``matrix`` mirrors, marks points outside ``img_shape`` invisible and
    composes ``matrix`` into ``keypoints_homography``. A no-op without keypoints.

    Args:
        results (dict): The transform's results, after the step (``img_shape`` is the new one).
        matrix (np.ndarray): 3x3 homography of the step (old frame -> new frame).
        kept (np.ndarray, optional): Indices of surviving instances. Defaults to None (all).
        owner (str): Name used in error messages. Defaults to 'transform'.
    """
    keypoints = results.get(KEYPOINTS_KEY, None)
    if keypoints is None:
        return
    keypoints = np.asarray(keypoints, dtype=np.float32)
    if kept is not None:
        keypoints = keypoints[np.asarray(kept, dtype=np.int64)]
    matrix = np.asarray(matrix, dtype=np.float64)
    keypoints = apply_homography(keypoints, matrix)
    if np.linalg.det(matrix[:2, :2]) < 0:
        keypoints = swap_left_right(keypoints, _flip_indices(results, keypoints.shape[1], owner))
    results[KEYPOINTS_KEY] = mark_outside_invisible(keypoints, results['img_shape'])
    previous = results.get(KEYPOINTS_HOMOGRAPHY_KEY, None)
    composed = matrix if previous is None else matrix @ np.asarray(previous, dtype=np.float64)
    results[KEYPOINTS_HOMOGRAPHY_KEY] = composed.astype(np.float32)


def check_keypoints_followed(results: dict, owner: str) -> None:
    """Raise when a geometric step moved the image and boxes but not the keypoints.

    ``LoadKeypointAnnotations`` starts ``keypoints_homography`` at the ``homography_matrix`` of
    the moment it loads (None = identity); every keypoint-aware step composes its matrix into
    ``keypoints_homography``, every mmdet geometric step into ``homography_matrix``. They
    differ only if a step moved one without the other, e.g. a stock ``Resize`` where
    ``KeypointResize`` was needed.
    """
    if results.get(KEYPOINTS_KEY, None) is None:
        return
    boxes = results.get('gt_bboxes', None)
    if boxes is not None and len(boxes) != len(results[KEYPOINTS_KEY]):
        raise KeypointPipelineError(
            f'{owner}: {len(boxes)} boxes but {len(results[KEYPOINTS_KEY])} keypoint sets in '
            f'{results.get("img_path")!r}: a transform dropped instances without their keypoints. Use the '
            'Keypoint* variant of it (e.g. KeypointFilterAnnotations, KeypointRandomCrop).')
    image = _as_matrix(results.get('homography_matrix', None))
    points = _as_matrix(results.get(KEYPOINTS_HOMOGRAPHY_KEY, None))
    if not np.allclose(image, points, rtol=1e-4, atol=1e-3):
        raise KeypointPipelineError(
            f'{owner}: the image of {results.get("img_path")!r} went through homography {image.tolist()} but its '
            f'keypoints through {points.tolist()}: a geometric transform in the pipeline does not move keypoints. '
            'Use KeypointResize / KeypointRandomFlip / KeypointRandomCrop (or RandomChoiceResize with '
            "resize_type='KeypointResize') instead of the stock mmdet transforms.")


def _as_matrix(matrix: Optional[np.ndarray]) -> np.ndarray:
    return np.eye(3) if matrix is None else np.asarray(matrix, dtype=np.float64)


def run_moving_keypoints(results: dict, step: Callable[[dict], Optional[dict]], owner: str) -> Optional[dict]:
    """Run a box-moving transform ``step`` on ``results`` and move ``gt_keypoints`` the same way.

    ``step`` must record its geometry in ``homography_matrix`` and drop instances by indexing
    ``gt_bboxes_labels`` together with ``gt_bboxes`` (mmdet's ``Resize``, ``RandomFlip``,
    ``RandomCrop``, ``FilterAnnotations`` and this package's transforms do). Transforms that
    reorder or duplicate instances (``Mosaic``, ``CopyPaste``) are not supported.
    """
    keypoints = results.get(KEYPOINTS_KEY, None)
    if keypoints is None:
        return step(results)
    labels = results.get('gt_bboxes_labels', None)
    num = len(keypoints)
    boxes = results.get('gt_bboxes', None)
    if boxes is not None and len(boxes) != num:
        raise KeypointPipelineError(
            f'{owner}: {len(boxes)} boxes but {num} keypoint sets in {results.get("img_path")!r}; an earlier '
            'transform dropped instances without their keypoints. Use the Keypoint* variant of it '
            '(e.g. KeypointFilterAnnotations, KeypointRandomCrop).')
    before = _as_matrix(results.get('homography_matrix', None))
    results['gt_bboxes_labels'] = np.arange(num, dtype=np.int64)
    out = step(results)
    if out is None:
        return None
    kept = np.asarray(out['gt_bboxes_labels'], dtype=np.int64)
    if labels is None:
        del out['gt_bboxes_labels']
    else:
        out['gt_bboxes_labels'] = np.asarray(labels)[kept]
    after = _as_matrix(out.get('homography_matrix', None))
    # The step's own matrix; `before` is an affine map of positive scale, always invertible.
    out[KEYPOINTS_KEY] = keypoints
    move_keypoints(out, after @ np.linalg.inv(before), kept, owner)
    return out


def moves_keypoints(transform: Callable) -> Callable:
    """Decorate a transform's ``transform(self, results)`` so that it also moves ``gt_keypoints``
    (see :func:`run_moving_keypoints`); the package's own transforms use it."""

    @functools.wraps(transform)
    def wrapper(self, results: dict) -> Optional[dict]:
        return run_moving_keypoints(results, lambda r: transform(self, r), type(self).__name__)

    return wrapper


class KeypointAwareMixin:
    """Make an mmdet transform move ``gt_keypoints`` exactly as it moves the boxes.

    Put it before the transform class: ``class KeypointResize(KeypointAwareMixin, Resize)``;
    see :func:`run_moving_keypoints` for what the wrapped transform must do.
    """

    def transform(self, results: dict) -> Optional[dict]:
        return run_moving_keypoints(results, super().transform, type(self).__name__)
