"""Validate COCO-format training sets once, before training starts.

Why: a missing image or a class-name typo otherwise surfaces hours into a run, as a
dataloader-worker crash or as a class that silently never trains (mmdet drops config
classes it cannot find in the file). Worse, a dataset whose boxes are all invalid (NaN
coordinates, negative widths, degenerate polygons) trains "successfully": mmdet's
``CocoDataset.parse_data_info`` drops each bad annotation, ``filter_cfg.filter_empty_gt``
keeps the image because it *has* annotations in the file, and the detector learns every
image as pure background - box and mask losses stay 0, exit code 0.

Here the annotation file is read once, up front, and every annotation goes through the
same rules as mmdet 3.3's parsing (ignore flag, no overlap with the image, width or
height below 1 px, area <= 0, unknown category) and then through what the training
pipeline does with it (crowd -> ignore region, polygons with fewer than 3 points ->
ignored instance, masks missing while the pipeline loads masks -> crash); images go
through ``filter_cfg`` as mmdet applies it (``filter_empty_gt`` looks at the raw
annotations, ``min_size`` at the image size). What is left decides, per image, whether
it has an instance to learn from. The check stops the run when no trained image has
one, or fewer than ``min_usable_share`` of them, naming the main reasons with counts and
example annotation ids, and it says which images would be dropped and which trained as
background.
"""
import json
import logging
import math
import os
import os.path as osp
from collections import Counter
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

from ..errors import DatasetValidationError
from .image_check import check_images

__all__ = ['DatasetValidationError', 'CocoValidationReport', 'validate_coco_dataset', 'pipeline_traits',
           'mmdet_parse_drop_reason', 'DROP_REASONS', 'FATAL_REASONS']

logger = logging.getLogger(__name__)
_SHOW = 5  # offenders named per problem
_EXAMPLES = 3  # example annotation ids per reason in the one-line error

_PARSED_OUT = "dropped by mmdet's parsing"
#: Why an annotation gives no instance to learn from: (what is wrong, what happens to it).
DROP_REASONS = {
    'non_finite': ('NaN/inf box coordinates or area', _PARSED_OUT),
    'ignore': ("an 'ignore' flag", _PARSED_OUT),
    'outside': ('a box outside its image', _PARSED_OUT),
    'degenerate': ('a box width or height below 1 px, or area <= 0', _PARSED_OUT),
    'unknown_category': ('a category_id not among the configured classes', _PARSED_OUT),
    'crowd': ('iscrowd=1', 'trained as ignore regions, not as objects'),
    'degenerate_polygon': ('no polygon with 3 or more points', 'ignored or dropped by the mask loading'),
    'invalid_mask': ('a mask that is neither polygons nor a valid RLE for this pipeline', 'ignored by the mask loader'),
    'no_image': ('an image_id not among the images', 'never loaded'),
}
#: Annotations that would crash training or poison it: (what is wrong, what it does). Any one stops the run.
FATAL_REASONS = {
    'malformed': ("a bbox that is not 4 numbers, or no 'area' / 'category_id'", "mmdet's parsing fails on it"),
    'non_finite_kept': ('infinite box coordinates that mmdet keeps', 'training would get inf box targets'),
    'no_segmentation': ('no segmentation while the training pipeline loads masks',
                        "LoadAnnotations fails with KeyError 'mask'"),
}
# Labels of the per-reason lines of :meth:`CocoValidationReport.summary`.
_LABELS = {'degenerate': 'degenerate boxes', 'outside': 'boxes outside the image', 'non_finite': 'non-finite boxes',
           'unknown_category': 'unknown category annotations', 'degenerate_polygon': 'degenerate polygons'}


_NUMBERS = frozenset({int, float})  # exact types: a bool is no coordinate
_SEQUENCES = frozenset({list, tuple})


def _is_number(value) -> bool:
    return type(value) in _NUMBERS


def mmdet_parse_drop_reason(ann: dict, width, height, cat_ids) -> Optional[str]:
    """Why mmdet 3.3's ``CocoDataset.parse_data_info`` drops ``ann``, or None when it keeps it.

    The same comparisons in the same order (so NaN behaves as it does there: a NaN
    coordinate makes the overlap 0); raises like mmdet would on malformed entries.
    """
    if ann.get('ignore', False):
        return 'ignore'
    x1, y1, w, h = ann['bbox']
    inter_w = max(0, min(x1 + w, width) - max(x1, 0))
    inter_h = max(0, min(y1 + h, height) - max(y1, 0))
    if inter_w * inter_h == 0:
        return 'outside'
    if ann['area'] <= 0 or w < 1 or h < 1:
        return 'degenerate'
    if ann['category_id'] not in cat_ids:
        return 'unknown_category'
    return None


def pipeline_traits(pipeline: Optional[Sequence[dict]]) -> Dict[str, object]:
    """What the training pipeline does with annotations: whether it loads masks (and
    rasterises polygons while loading) and whether a ``FilterAnnotations`` step skips
    images left without boxes. Annotation loaders nested in ``LoadImageReduced`` count."""
    traits: Dict[str, object] = dict(with_mask=False, poly2mask=True, filter_annotations=False)
    for step in pipeline or ():
        if not isinstance(step, dict):
            continue
        loaders = [step]
        if isinstance(step.get('load_annotations'), dict):
            loaders.append(step['load_annotations'])
        for loader in loaders:
            if loader.get('type') in ('LoadAnnotations', 'mmdet.LoadAnnotations'):
                traits['with_mask'] = bool(loader.get('with_mask', False))
                traits['poly2mask'] = bool(loader.get('poly2mask', True))
        if step.get('type') in ('FilterAnnotations', 'mmdet.FilterAnnotations') and step.get('keep_empty', True):
            traits['filter_annotations'] = True
    return traits


def _mask_reason(segmentation, poly2mask: bool) -> Optional[str]:
    """What mmdet's ``LoadAnnotations._process_masks`` does with a kept instance's mask."""
    if isinstance(segmentation, list):
        valid = [p for p in segmentation if isinstance(p, (list, tuple)) and len(p) % 2 == 0 and len(p) >= 6]
        return None if valid else 'degenerate_polygon'
    if not poly2mask:
        return 'invalid_mask'  # PolygonMasks need polygons; an RLE is ignored
    if isinstance(segmentation, dict) and segmentation.get('counts') is not None and \
            segmentation.get('size') is not None and isinstance(segmentation['counts'], (list, str)):
        return None
    return 'invalid_mask'


@dataclass
class CocoValidationReport:
    """Counts and first offenders of one annotation file.

    Attributes:
        reasons (dict[str, list[int]]): :data:`DROP_REASONS` key -> ids of the annotations
            that give no instance to learn from for that reason.
        fatal_annotations (dict[str, list[int]]): :data:`FATAL_REASONS` key -> ids.
        boxes_outside_image (list[int]): Boxes that stick out of their image by more than
            1 px (kept and clipped when they overlap it, else also in ``reasons['outside']``).
        filtered_images (dict[str, list[int]]): 'filter_empty_gt' / 'min_size' -> ids of
            the images ``filter_cfg`` drops.
        trained_images (int): Images left after ``filter_cfg``.
        usable_images (int): Trained images with at least one usable instance and a good file.
        background_images (list[int]): Trained images without a usable instance.
        empty_images (list[int]): All images without a usable instance (filtered or not).
        unannotated_images (list[int]): Images without any annotation in the file.
        bad_images (list[tuple[str, str]]): (path, reason) found by the image check.
    """
    ann_file: str
    num_images: int = 0
    num_annotations: int = 0
    missing_images: List[str] = field(default_factory=list)
    missing_classes: List[str] = field(default_factory=list)
    images_without_size: List[int] = field(default_factory=list)
    reasons: Dict[str, List[int]] = field(default_factory=dict)
    fatal_annotations: Dict[str, List[int]] = field(default_factory=dict)
    boxes_outside_image: List[int] = field(default_factory=list)
    filtered_images: Dict[str, List[int]] = field(default_factory=dict)
    trained_images: int = 0
    usable_images: int = 0
    background_images: List[int] = field(default_factory=list)
    empty_images: List[int] = field(default_factory=list)
    unannotated_images: List[int] = field(default_factory=list)
    bad_images: List[Tuple[str, str]] = field(default_factory=list)
    image_check: str = 'off'
    max_bad_images: Optional[int] = None
    min_usable_share: float = 0.0
    filter_annotations: bool = False
    filter_empty_gt: bool = False

    # views kept for callers of the first version
    @property
    def degenerate_boxes(self) -> List[int]:
        return self.reasons.get('degenerate', [])

    @property
    def unknown_category_annotations(self) -> List[int]:
        return self.reasons.get('unknown_category', [])

    @property
    def usable_share(self) -> float:
        return self.usable_images / self.trained_images if self.trained_images else 0.0

    def _reason_text(self, limit: int = 4) -> str:
        """``N <reason> (e.g. ids a, b, c)`` for the most frequent reasons, fatal first."""
        items = [(ids, FATAL_REASONS[key]) for key, ids in self.fatal_annotations.items() if ids]
        items += sorted(((ids, DROP_REASONS[key]) for key, ids in self.reasons.items() if ids),
                        key=lambda item: -len(item[0]))
        parts = [f'{len(ids)} with {what} ({fate}, e.g. ids {", ".join(str(i) for i in ids[:_EXAMPLES])})'
                 for ids, (what, fate) in items[:limit]]
        if len(items) > limit:
            parts.append(f'{sum(len(ids) for ids, _ in items[limit:])} more for other reasons')
        return '; '.join(parts)

    def _num_dropped(self) -> int:
        return sum(len(v) for v in self.reasons.values()) + sum(len(v) for v in self.fatal_annotations.values())

    def _fates(self) -> str:
        """What happens to the images that give nothing to learn from."""
        parts = []
        for key, ids in self.filtered_images.items():
            if ids:
                why = ('no annotation of a configured class in the file' if key == 'filter_empty_gt'
                       else 'smaller than filter_cfg.min_size')
                parts.append(f'{len(ids)} image(s) are dropped by filter_cfg.{key} ({why})')
        if self.background_images:
            n = len(self.background_images)
            kept = ('filter_cfg.filter_empty_gt keeps every image that has annotations in the file, usable or not'
                    if self.filter_empty_gt else 'filter_cfg.filter_empty_gt is off')
            if self.filter_annotations:
                parts.append(f'{n} image(s) keep no instance to learn from ({kept}): they are trained as pure '
                             "background, or skipped where the pipeline's FilterAnnotations finds no box left (with "
                             "none left mmengine ends in 'Cannot find valid image')")
            else:
                parts.append(f'{n} image(s) are trained as pure background (their annotations are all dropped or '
                             f'ignored, but {kept})')
        if self.bad_images:
            parts.append(f'{len(self.bad_images)} bad image file(s) are skipped during training')
        return '; '.join(parts)

    @property
    def fatal(self) -> List[str]:
        """One line per problem that stops the run (empty when training may start)."""
        problems = []
        if self.missing_images:
            problems.append(f'{len(self.missing_images)} image file(s) missing, e.g. {self.missing_images[:_SHOW]}')
        if self.missing_classes:
            problems.append(f'config classes not among the file\'s categories: {self.missing_classes}')
        if self.images_without_size:
            problems.append(f'{len(self.images_without_size)} image entries without width/height (mmdet\'s '
                            f'CocoDataset reads them), e.g. ids {self.images_without_size[:_SHOW]}')
        for key, ids in self.fatal_annotations.items():
            if ids:
                what, effect = FATAL_REASONS[key]
                problems.append(f'{len(ids)} annotation(s) with {what}: {effect} (e.g. ids {ids[:_SHOW]})')
        if self.max_bad_images is not None and len(self.bad_images) > self.max_bad_images:
            shown = '; '.join(f'{path} ({reason})' for path, reason in self.bad_images[:_SHOW])
            problems.append(f'{len(self.bad_images)} bad image file(s), more than dataset_check.max_bad_images='
                            f'{self.max_bad_images}: {shown}' + (' ...' if len(self.bad_images) > _SHOW else ''))
        if problems:
            return problems
        if self.num_images == 0:
            problems.append('the file lists no images')
        elif self.trained_images == 0:
            why = ('the file has no annotations' if self.num_annotations == 0 else
                   f'{self._num_dropped()} of {self.num_annotations} annotations give nothing to learn from: '
                   f'{self._reason_text()}')
            problems.append(f'no training image is left: {why}; {self._fates()}')
        elif self.usable_images == 0 or self.usable_share < self.min_usable_share:
            which = (f'none of the {self.trained_images} training images has' if self.usable_images == 0 else
                     f'only {self.usable_images} of {self.trained_images} training images ({self.usable_share:.0%}, '
                     f'dataset_check.min_usable_share is {self.min_usable_share:.0%}) have')
            dropped = self._num_dropped()
            annotations = (f'{dropped} of {self.num_annotations} annotations give nothing to learn from: '
                           f'{self._reason_text()}' if dropped else
                           f'all {self.num_annotations} annotations are usable, their images are not')
            problems.append(f'{which} an instance to learn from: {annotations}; {self._fates()}')
        return problems

    def warnings(self) -> List[str]:
        """Non-fatal findings worth a WARNING: images trained as background although their
        annotations were meant as objects, and bad image files that will be skipped."""
        found = []
        unannotated = set(self.unannotated_images)
        dropped_background = [i for i in self.background_images if i not in unannotated]
        if dropped_background:
            found.append(f'{len(dropped_background)} image(s) have annotations but none usable, so they are trained '
                         f'as pure background: {self._reason_text()}')
        if self.bad_images and (self.max_bad_images is None or len(self.bad_images) <= self.max_bad_images):
            shown = '; '.join(f'{path} ({reason})' for path, reason in self.bad_images[:_SHOW])
            found.append(f'{len(self.bad_images)} bad image file(s) will be skipped during training: {shown}')
        return found

    def summary(self) -> str:
        lines = [f'{self.ann_file}: {self.num_images} images, {self.num_annotations} annotations; '
                 f'{self.trained_images} images trained on, {self.usable_images} with a usable instance']
        for key, ids in list(self.fatal_annotations.items()) + list(self.reasons.items()):
            if ids:
                what, fate = FATAL_REASONS.get(key) or DROP_REASONS[key]
                lines.append(f'  {_LABELS.get(key, key.replace("_", " "))}: {len(ids)} (first ids {ids[:_SHOW]}): '
                             f'{what}; {fate}')
        if self.boxes_outside_image:
            lines.append(f'  boxes sticking out of their image: {len(self.boxes_outside_image)} (first ids '
                         f'{self.boxes_outside_image[:_SHOW]}); clipped by the pipeline when they overlap it')
        fates = self._fates()
        if fates:
            lines.append(f'  images: {fates}')
        if self.image_check != 'off':
            lines.append(f'  image check ({self.image_check}): {len(self.bad_images)} bad file(s)')
        lines += [f'  FATAL: {problem}' for problem in self.fatal]
        return '\n'.join(lines)


def _image_size(im: dict) -> Optional[Tuple[float, float]]:
    width, height = im.get('width'), im.get('height')
    return (width, height) if _is_number(width) and _is_number(height) else None


def validate_coco_dataset(ann_file: str, img_dir: str, classes: Optional[Sequence[str]] = None,
                          check_files: bool = True, filter_cfg: Optional[dict] = None,
                          pipeline: Optional[Sequence[dict]] = None, min_usable_share: float = 0.0,
                          image_check: str = 'off', max_bad_images: Optional[int] = None) -> CocoValidationReport:
    """Check one COCO annotation file, its image folder and what training would use of it.

    Args:
        ann_file (str): The annotation file.
        img_dir (str): Folder the ``file_name`` entries are relative to.
        classes (Sequence[str], optional): The config's ``metainfo.classes``; None means
            every category of the file. Defaults to None.
        check_files (bool): Check that every image file exists. Defaults to True.
        filter_cfg (dict, optional): The dataset's ``filter_cfg`` (``filter_empty_gt``,
            ``min_size``), applied as mmdet applies it. Defaults to None (no filtering).
        pipeline (Sequence[dict], optional): The training pipeline, for how masks are
            loaded and whether ``FilterAnnotations`` skips images. Defaults to None.
        min_usable_share (float): Fatal when fewer of the trained images than this have
            a usable instance (no usable image at all is always fatal). Defaults to 0.
        image_check (str): 'quick', 'full' or 'off': look for empty / truncated image
            files (see :mod:`.image_check`). Defaults to 'off'.
        max_bad_images (int, optional): Fatal when the image check finds more bad files.
            Defaults to None (never fatal).

    Raises:
        DatasetValidationError: the annotation file cannot be read or parsed.
    """
    try:
        with open(ann_file) as f:
            data = json.load(f)
        images, annotations, categories = data['images'], data.get('annotations') or [], data['categories']
        if not isinstance(images, list) or not isinstance(annotations, list) or not isinstance(categories, list):
            raise TypeError('"images", "annotations" and "categories" must be lists')
    except (OSError, ValueError) as error:
        raise DatasetValidationError(f'annotation file {ann_file} is not readable JSON: {error}') from error
    except (KeyError, TypeError) as error:
        raise DatasetValidationError(f'annotation file {ann_file} is not COCO format (needs "images" and '
                                     f'"categories" lists): {error}') from error
    traits = pipeline_traits(pipeline)
    report = CocoValidationReport(ann_file, num_images=len(images), num_annotations=len(annotations),
                                  min_usable_share=float(min_usable_share), image_check=image_check,
                                  max_bad_images=max_bad_images, filter_annotations=bool(traits['filter_annotations']))
    names = {c.get('name') for c in categories}
    if classes is not None:
        report.missing_classes = [c for c in classes if c not in names]
    cat_ids = {c.get('id') for c in categories if classes is None or c.get('name') in classes}
    sizes = {im.get('id'): _image_size(im) for im in images}
    report.images_without_size = [im.get('id') for im in images if sizes[im.get('id')] is None]
    if check_files:
        existing = set(os.listdir(img_dir)) if osp.isdir(img_dir) else set()
        for im in images:
            name = im.get('file_name', '')
            if (name not in existing) if '/' not in name else not osp.isfile(osp.join(img_dir, name)):
                report.missing_images.append(osp.join(img_dir, name))

    reasons: Dict[str, List[int]] = {key: [] for key in DROP_REASONS}
    fatal: Dict[str, List[int]] = {key: [] for key in FATAL_REASONS}
    annotated, in_class, usable = set(), set(), set()
    for ann in annotations:
        ann_id, image_id = ann.get('id'), ann.get('image_id')
        annotated.add(image_id)
        if ann.get('category_id') in cat_ids:
            in_class.add(image_id)  # what filter_empty_gt looks at (mmdet's cat_img_map)
        if image_id not in sizes:
            reasons['no_image'].append(ann_id)
            continue
        size = sizes[image_id]
        if size is None:
            continue  # already fatal: images_without_size
        bbox, area = ann.get('bbox'), ann.get('area')
        if type(bbox) not in _SEQUENCES or len(bbox) != 4 or 'category_id' not in ann or type(area) not in _NUMBERS:
            fatal['malformed'].append(ann_id)
            continue
        x, y, w, h = bbox
        if type(x) not in _NUMBERS or type(y) not in _NUMBERS or type(w) not in _NUMBERS or type(h) not in _NUMBERS:
            fatal['malformed'].append(ann_id)
            continue
        finite = math.isfinite(x + y + w + h + area)  # one NaN or inf makes the sum non-finite
        dropped = mmdet_parse_drop_reason(ann, size[0], size[1], cat_ids)
        if finite and (x < -1 or y < -1 or x + w > size[0] + 1 or y + h > size[1] + 1):
            report.boxes_outside_image.append(ann_id)
        if not finite:
            if dropped is None:
                fatal['non_finite_kept'].append(ann_id)
            else:
                reasons['non_finite'].append(ann_id)
            continue
        if dropped == 'outside' and (w < 1 or h < 1 or ann['area'] <= 0):
            dropped = 'degenerate'  # mmdet tests the overlap first; name the more specific problem
        if dropped is not None:
            reasons[dropped].append(ann_id)
            continue
        if traits['with_mask'] and not ann.get('segmentation'):
            fatal['no_segmentation'].append(ann_id)
            continue
        if ann.get('iscrowd', False):
            reasons['crowd'].append(ann_id)
            continue
        if traits['with_mask']:
            mask_reason = _mask_reason(ann['segmentation'], bool(traits['poly2mask']))
            if mask_reason:
                reasons[mask_reason].append(ann_id)
                continue
        usable.add(image_id)
    report.reasons = {key: ids for key, ids in reasons.items() if ids}
    report.fatal_annotations = {key: ids for key, ids in fatal.items() if ids}

    filter_cfg = dict(filter_cfg or {})
    filter_empty_gt = bool(filter_cfg.get('filter_empty_gt', False)) if filter_cfg else False
    min_size = filter_cfg.get('min_size', 0) if filter_cfg else 0
    filtered: Dict[str, List[int]] = {'filter_empty_gt': [], 'min_size': []}
    trained = []
    for im in images:
        image_id, size = im.get('id'), sizes[im.get('id')]
        if filter_empty_gt and image_id not in in_class:
            filtered['filter_empty_gt'].append(image_id)
        elif size is not None and min(size) < min_size:
            filtered['min_size'].append(image_id)
        else:
            trained.append(im)
    report.filtered_images = {key: ids for key, ids in filtered.items() if ids}
    report.filter_empty_gt = filter_empty_gt

    if image_check != 'off' and check_files:
        missing = set(report.missing_images)
        paths = [osp.join(img_dir, im.get('file_name', '')) for im in trained]
        result = check_images([p for p in paths if p not in missing], image_check)
        report.bad_images = result.bad
        logger.info('%s', result.summary())
    bad_paths = {path for path, _ in report.bad_images}
    report.trained_images = len(trained)
    report.usable_images = sum(1 for im in trained if im.get('id') in usable
                               and osp.join(img_dir, im.get('file_name', '')) not in bad_paths)
    report.background_images = [im.get('id') for im in trained if im.get('id') not in usable]
    report.unannotated_images = [im.get('id') for im in images if im.get('id') not in annotated]
    report.empty_images = [im.get('id') for im in images if im.get('id') not in usable]
    return report
