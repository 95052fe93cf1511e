"""COCO person keypoints (``person_keypoints_*.json``) as an mmdet ``CocoDataset``.

Why a subclass: mmdet 3.3 reads boxes and masks of COCO files but drops the ``keypoints`` of
each annotation, and its metainfo has no keypoint names, skeleton, left/right flip pairs or
OKS sigmas, which flipping, evaluation and drawing need. Instances are parsed by mmdet's own
``parse_data_info`` one annotation at a time, so exactly the annotations mmdet keeps get
keypoints, with mmdet's filtering rules unchanged.

Keypoint coordinates: COCO stores integer pixel indices; 0.5 is added to labelled keypoints
so they live in the continuous frame of mmdet's boxes (pixel ``i`` covers ``[i, i + 1)``),
as detectron2 does; :class:`CocoKeypointMetric` subtracts it again before evaluation.
Unlabelled keypoints (``v = 0``) stay ``(0, 0, 0)``.
"""
import logging
from typing import List, Sequence, Union

import numpy as np

from mmdet.datasets import CocoDataset
from mmdet.registry import DATASETS
from .transforms.keypoint_geometry import KeypointPipelineError, check_flip_indices

__all__ = ['COCO_PERSON_KEYPOINT_META', 'CocoKeypointDataset', 'flip_indices_from_names']

logger = logging.getLogger(__name__)

_COCO_NAMES = ('nose', 'left_eye', 'right_eye', 'left_ear', 'right_ear', 'left_shoulder', 'right_shoulder',
               'left_elbow', 'right_elbow', 'left_wrist', 'right_wrist', 'left_hip', 'right_hip', 'left_knee',
               'right_knee', 'left_ankle', 'right_ankle')
# person_keypoints_*.json 'skeleton' (1-based there), 0-based here.
_COCO_SKELETON = ((15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7), (6, 8), (7, 9),
                  (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6))
# COCO keypoint evaluation's per-keypoint OKS sigmas (pycocotools' kpt_oks_sigmas).
_COCO_SIGMAS = (.026, .025, .025, .035, .035, .079, .079, .072, .072, .062, .062, .107, .107, .087, .087, .089, .089)


def flip_indices_from_names(names: Sequence[str]) -> List[int]:
    """Left/right mirror of each keypoint by name (``left_*`` <-> ``right_*``; others map to themselves).

    Raises:
        KeypointPipelineError: a ``left_x`` without ``right_x`` (or the reverse).
    """
    index = {name: i for i, name in enumerate(names)}
    out = []
    for name in names:
        for a, b in (('left', 'right'), ('right', 'left')):
            if a in name:
                mirror = name.replace(a, b)
                if mirror not in index:
                    raise KeypointPipelineError(f'keypoint {name!r} has no mirror {mirror!r} among {list(names)}')
                out.append(index[mirror])
                break
        else:
            out.append(index[name])
    return out


COCO_PERSON_KEYPOINT_META = dict(
    classes=('person', ),
    palette=[(220, 20, 60)],
    keypoint_names=_COCO_NAMES,
    skeleton=_COCO_SKELETON,
    flip_indices=tuple(flip_indices_from_names(_COCO_NAMES)),
    keypoint_sigmas=_COCO_SIGMAS)


@DATASETS.register_module()
class CocoKeypointDataset(CocoDataset):
    """COCO-format instances with keypoints; metainfo carries the keypoint description.

    Metainfo (defaults: COCO person, 17 keypoints; override all of them together for other
    keypoint sets, e.g. the toy figures):

    - ``classes`` (tuple[str]), ``palette``
    - ``keypoint_names`` (tuple[str]): K names, in annotation order
    - ``skeleton`` (tuple[tuple[int, int]]): 0-based keypoint pairs to draw as limbs
    - ``flip_indices`` (tuple[int]): mirror of each keypoint (defaults to ``left_*`` <->
      ``right_*`` by name when omitted)
    - ``keypoint_sigmas`` (tuple[float]): per-keypoint OKS sigmas for evaluation

    Each instance gets ``keypoints`` ((K, 3) float32, ``x, y, v``) and ``num_keypoints``
    (labelled count from the file); each sample gets ``flip_indices`` for the flip transforms.

    ``filter_cfg`` accepts, besides mmdet's keys, ``min_keypoints_per_image`` (int): drop
    training images whose non-crowd instances have fewer labelled keypoints in total
    (Detectron keeps images with at least one visible keypoint; detectron2's
    ``MIN_KEYPOINTS_PER_IMAGE`` defaults to 1). Defaults to 0 (keep all).
    """
    METAINFO = COCO_PERSON_KEYPOINT_META

    def __init__(self, *args, **kwargs) -> None:
        self._checked_file_keypoints = False
        super().__init__(*args, **kwargs)

    @property
    def num_keypoints(self) -> int:
        return len(self.metainfo['keypoint_names'])

    def _check_metainfo(self) -> None:
        meta = self._metainfo
        name = type(self).__name__
        names = meta.get('keypoint_names', None)
        if not names:
            raise KeypointPipelineError(f'{name}: metainfo needs keypoint_names (K names in annotation order)')
        if meta.get('flip_indices', None) is None:
            meta['flip_indices'] = tuple(flip_indices_from_names(names))
        check_flip_indices(meta['flip_indices'], len(names), f'{name} metainfo')
        sigmas = meta.get('keypoint_sigmas', None)
        if sigmas is None or len(sigmas) != len(names):
            raise KeypointPipelineError(
                f'{name}: metainfo keypoint_sigmas must give one OKS sigma per keypoint ({len(names)}), got '
                f'{sigmas}; set metainfo=dict(..., keypoint_sigmas=...) with keypoint_names')
        for a, b in meta.get('skeleton', ()):
            if not (0 <= a < len(names) and 0 <= b < len(names)):
                raise KeypointPipelineError(f'{name}: skeleton link ({a}, {b}) is not a pair of 0-based keypoint '
                                            f'indices below {len(names)}')

    def _check_file_keypoints(self) -> None:
        """Once per file: the keypoint names of the annotated category must be the metainfo's."""
        self._checked_file_keypoints = True
        for cat_id in self.cat_ids:
            names = self.coco.cats[cat_id].get('keypoints', None)
            if names is not None and tuple(names) != tuple(self.metainfo['keypoint_names']):
                raise KeypointPipelineError(
                    f'{self.ann_file}: category {self.coco.cats[cat_id]["name"]!r} has keypoints {list(names)}, but '
                    f'the dataset metainfo says {list(self.metainfo["keypoint_names"])}; set metainfo '
                    '(keypoint_names, skeleton, flip_indices, keypoint_sigmas) to match the file')

    def load_data_list(self) -> List[dict]:
        self._check_metainfo()
        return super().load_data_list()

    def parse_data_info(self, raw_data_info: dict) -> Union[dict, List[dict]]:
        """mmdet's parsing per annotation, plus ``keypoints`` / ``num_keypoints`` / ``flip_indices``."""
        if not self._checked_file_keypoints:
            self._check_file_keypoints()
        img_info = raw_data_info['raw_img_info']
        data_info = super().parse_data_info(dict(raw_ann_info=[], raw_img_info=img_info))
        instances = []
        for ann in raw_data_info['raw_ann_info']:
            kept = super().parse_data_info(dict(raw_ann_info=[ann], raw_img_info=img_info))['instances']
            if not kept:
                continue
            instance = kept[0]
            instance['keypoints'] = self._parse_keypoints(ann)
            instance['num_keypoints'] = int(ann.get('num_keypoints', int((instance['keypoints'][:, 2] > 0).sum())))
            instances.append(instance)
        data_info['instances'] = instances
        data_info['flip_indices'] = list(self.metainfo['flip_indices'])
        return data_info

    def _parse_keypoints(self, ann: dict) -> np.ndarray:
        values = ann.get('keypoints', None)
        if values is None:
            if ann.get('iscrowd', False):  # crowd regions carry no keypoints
                return np.zeros((self.num_keypoints, 3), dtype=np.float32)
            raise KeypointPipelineError(f'{self.ann_file}: annotation {ann.get("id")} has no "keypoints"; a '
                                        'person_keypoints_*.json file is expected')
        keypoints = np.asarray(values, dtype=np.float32)
        if keypoints.size != 3 * self.num_keypoints:
            raise KeypointPipelineError(
                f'{self.ann_file}: annotation {ann.get("id")} has {keypoints.size} keypoint values, expected '
                f'3 x {self.num_keypoints} for {list(self.metainfo["keypoint_names"])}')
        keypoints = keypoints.reshape(self.num_keypoints, 3)
        labelled = keypoints[:, 2] > 0
        keypoints[labelled, :2] += 0.5  # pixel index -> continuous pixel centre
        keypoints[~labelled] = 0
        return keypoints

    def filter_data(self) -> List[dict]:
        """mmdet's filters, then ``min_keypoints_per_image`` (training only)."""
        data_list = super().filter_data()
        minimum = (self.filter_cfg or {}).get('min_keypoints_per_image', 0)
        if self.test_mode or not minimum:
            return data_list
        kept = [info for info in data_list
                if sum(int((inst['keypoints'][:, 2] > 0).sum()) for inst in info['instances']
                       if not inst['ignore_flag']) >= minimum]
        logger.info('%s: %d of %d images have >= %d labelled keypoints', self.ann_file, len(kept), len(data_list),
                    minimum)
        return kept
