"""Validate COCO-format training sets once, before training starts.

Why: a missing image or a class-name typo otherwise surfaces hours into a run, as a
dataloader-worker crash or as a class that silently never trains (mmdet drops config
classes it cannot find in the file). Worse, a dataset whose boxes are all invalid (NaN
coordinates, negative widths, degenerate polygons) trains "successfully": mmdet's
``CocoDataset.parse_data_info`` drops each bad annotation, ``filter_cfg.filter_empty_gt``
keeps the image because it *has* annotations in the file, and the detector learns every
image as pure background - box and mask losses stay 0, exit code 0.

Here the annotation file is read once, up front, by a streaming reader into columns
(:mod:`.coco_reader`: no second ``json.load`` of what mmdet parses anyway, a small fraction of
its time and memory at COCO scale), and every annotation goes through mmdet 3.3's parsing
rules, vectorised over all annotations (ignore flag, no overlap with the image, width or
height below 1 px, area <= 0, unknown category) and then through what the training pipeline
does with it (crowd -> ignore region, polygons with fewer than 3 points -> ignored instance,
masks missing while the pipeline loads masks -> crash); images go through ``filter_cfg`` as
mmdet applies it (``filter_empty_gt`` looks at the raw annotations, ``min_size`` at the image
size). What is left decides, per image, whether it has an instance to learn from. The check
stops the run when no trained image has one, or fewer than ``min_usable_share`` of them,
naming the main reasons with counts and example annotation ids, and it says which images
would be dropped and which trained as background. Files that lie stop it too: annotation or
image ids used twice (mmdet asserts on the first, and silently puts one file's boxes on
another file's pixels for the second).

Why the rules are the package's own and not a call of ``CocoDataset.parse_data_info`` /
``filter_data``: mmdet's keep only what they keep - a dropped annotation leaves no trace, not
even its id, and nothing says why - while the check must name the reason and the ids; and
they work per image on dicts, which at COCO scale costs what mmdet's own initialisation
costs. :func:`mmdet_parse_drop_reason` runs the vectorised rule on one annotation, and the
tests hold it against mmdet's ``parse_data_info`` case by case.
"""
import logging
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from ..errors import DatasetValidationError
from .coco_reader import SEG_NO_POLYGON, SEG_NONE, SEG_POLYGON, SEG_RLE, read_coco_columns
from .image_check import check_images

__all__ = ['DatasetValidationError', 'CocoValidationReport', 'validate_coco_dataset', 'pipeline_traits',
           'mmdet_parse_drop_reason', 'mmdet_drop_codes', 'DROP_REASONS', 'FATAL_REASONS']

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


#: Codes of :func:`mmdet_drop_codes`, in the order mmdet tests them.
_KEPT, _IGNORE, _OUTSIDE, _DEGENERATE, _UNKNOWN = range(5)
_DROP_NAMES = {_IGNORE: 'ignore', _OUTSIDE: 'outside', _DEGENERATE: 'degenerate', _UNKNOWN: 'unknown_category'}


def _py_max(a, b):
    """Python's ``max(a, b)`` elementwise: ``b`` only when ``b > a`` (so a NaN second argument
    loses and a NaN first argument wins, as in mmdet's parsing)."""
    return np.where(b > a, b, a)


def _py_min(a, b):
    """Python's ``min(a, b)`` elementwise: ``b`` only when ``b < a``."""
    return np.where(b < a, b, a)


def mmdet_drop_codes(x, y, w, h, area, ignore, known_category, width, height) -> np.ndarray:
    """Why mmdet 3.3's ``CocoDataset.parse_data_info`` drops each annotation (a ``_DROP_NAMES``
    code, 0 when it keeps it), vectorised: the same comparisons in the same order, with
    Python's ``max``/``min`` semantics, so NaN and inf behave as they do there (a NaN
    coordinate makes the overlap 0)."""
    inter_w = _py_max(0.0, _py_min(x + w, width) - _py_max(x, 0.0))
    inter_h = _py_max(0.0, _py_min(y + h, height) - _py_max(y, 0.0))
    with np.errstate(invalid='ignore'):  # inf * 0 is NaN there too
        no_overlap = inter_w * inter_h == 0
    degenerate = (area <= 0) | (w < 1) | (h < 1)
    return np.select([ignore, no_overlap, degenerate, ~known_category], [_IGNORE, _OUTSIDE, _DEGENERATE, _UNKNOWN],
                     _KEPT).astype(np.int8)


def mmdet_parse_drop_reason(ann: dict, width, height, cat_ids) -> Optional[str]:
    """Why mmdet 3.3's ``CocoDataset.parse_data_info`` drops ``ann``, or None when it keeps it:
    :func:`mmdet_drop_codes` on one annotation (raises like mmdet would on malformed entries)."""
    x1, y1, w, h = (float(v) for v in ann['bbox'])
    code = mmdet_drop_codes(*(np.array([v], dtype=np.float64) for v in (x1, y1, w, h, float(ann['area']))),
                            np.array([bool(ann.get('ignore', False))]),
                            np.array([ann['category_id'] in cat_ids]), float(width), float(height))[0]
    return _DROP_NAMES.get(int(code))


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
        duplicate_image_ids (list): Image ids given to more than one image entry.
        duplicate_annotation_ids (list): Annotation ids given to more than one annotation.
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
    duplicate_image_ids: list = field(default_factory=list)
    duplicate_annotation_ids: list = field(default_factory=list)

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
        if self.duplicate_image_ids:
            problems.append(f'{len(self.duplicate_image_ids)} image id(s) given to more than one image entry, e.g. '
                            f'ids {self.duplicate_image_ids[:_SHOW]}: mmdet keeps one entry per id and puts the boxes '
                            "of all of them on that one file's pixels; give every image its own id")
        if self.duplicate_annotation_ids:
            problems.append(f'{len(self.duplicate_annotation_ids)} annotation id(s) used more than once, e.g. ids '
                            f"{self.duplicate_annotation_ids[:_SHOW]}: mmdet's CocoDataset stops on them (\"Annotation "
                            'ids ... are not unique\"); give every annotation its own id')
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


def _duplicates(codes: np.ndarray, ids: np.ndarray) -> list:
    """The ids (first occurrences, in file order) whose code appears more than once."""
    if codes.size < 2:
        return []
    unique, first, counts = np.unique(codes, return_index=True, return_counts=True)
    return ids[np.sort(first[counts > 1])].tolist()


def _codes(image_ids: np.ndarray, *others: np.ndarray) -> Tuple[np.ndarray, ...]:
    """Integer codes for ids that are Python values (a file read with json whose ids are not
    all integers): equal ids (by Python's ``==``, as dict keys) get equal codes."""
    if image_ids.dtype != object and all(o.dtype != object for o in others):
        return (image_ids, *others)
    table: dict = {}
    return tuple(np.array([table.setdefault(v, len(table)) for v in column.tolist()], dtype=np.int64)
                 for column in (image_ids, *others))


def _member(values: np.ndarray, present: np.ndarray, allowed: list) -> np.ndarray:
    """``value in set(allowed)`` per entry (``present`` False: the key is missing, i.e. None)."""
    if values.dtype != object and all(type(a) is int for a in allowed):
        return np.isin(values, np.array(allowed, dtype=np.int64)) & present
    allowed_set = set(allowed)
    return np.array([(v if p else None) in allowed_set for v, p in zip(values.tolist(), present.tolist())], dtype=bool)


def validate_coco_dataset(ann_file: str, img_dir: str, classes: Optional[Sequence[str]] = None,
                          check_files: bool = True, filter_cfg: Optional[dict] = None,
                          pipeline: Optional[Sequence[dict]] = None, min_usable_share: float = 0.0,
                          image_check: str = 'off', max_bad_images: Optional[int] = None,
                          max_image_pixels: Optional[int] = None) -> CocoValidationReport:
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
            files, and files whose header disagrees with the annotation file's size or is
            above ``max_image_pixels`` (see :mod:`.image_check`). Defaults to 'off'.
        max_bad_images (int, optional): Fatal when the image check finds more bad files.
            Defaults to None (never fatal).
        max_image_pixels (int, optional): Image files with more pixels are bad (skipped in
            training, never decoded). Defaults to None (no limit).

    Raises:
        DatasetValidationError: the annotation file cannot be read or parsed.
    """
    cols = read_coco_columns(ann_file)
    traits = pipeline_traits(pipeline)
    report = CocoValidationReport(ann_file, num_images=cols.num_images, num_annotations=cols.num_annotations,
                                  min_usable_share=float(min_usable_share), image_check=image_check,
                                  max_bad_images=max_bad_images, filter_annotations=bool(traits['filter_annotations']))
    names = {c.get('name') for c in cols.categories}
    if classes is not None:
        report.missing_classes = [c for c in classes if c not in names]
    cat_ids = [c.get('id') for c in cols.categories if classes is None or c.get('name') in classes]
    image_codes, ann_image_codes = _codes(cols.image_ids, cols.ann_image_ids)
    report.duplicate_image_ids = _duplicates(image_codes, cols.image_ids)
    report.duplicate_annotation_ids = _duplicates(*_codes(cols.ann_ids), cols.ann_ids)
    report.images_without_size = cols.image_ids[~cols.has_size].tolist()
    file_names = cols.file_names
    if check_files:
        existing = set(os.listdir(img_dir)) if osp.isdir(img_dir) else set()
        report.missing_images = [osp.join(img_dir, name) for name in file_names
                                 if ((name not in existing) if '/' not in name else
                                     not osp.isfile(osp.join(img_dir, name)))]

    # each annotation's image: the last entry of its id, as a dict keyed by id keeps it
    order = np.argsort(image_codes, kind='stable')
    sorted_codes = image_codes[order]
    slot = np.searchsorted(sorted_codes, ann_image_codes, side='right') - 1
    found = (slot >= 0) & (sorted_codes[np.maximum(slot, 0)] == ann_image_codes) if order.size else \
        np.zeros(ann_image_codes.size, dtype=bool)
    image_of = np.where(found, order[np.maximum(slot, 0)] if order.size else 0, -1)
    in_class = _member(cols.category_ids, cols.has_category, cat_ids)  # what filter_empty_gt looks at

    ids = cols.ann_ids
    sized = found & cols.has_size[np.maximum(image_of, 0)]  # without size: already fatal
    malformed = sized & ~(cols.bbox_ok & cols.has_category & cols.area_ok)
    parsed = sized & ~malformed
    width, height = cols.widths[np.maximum(image_of, 0)], cols.heights[np.maximum(image_of, 0)]
    x, y, w, h = cols.bbox.T
    area = cols.area
    with np.errstate(invalid='ignore', over='ignore'):
        finite = np.isfinite(x + y + w + h + area)  # one NaN or inf makes the sum non-finite
        drop = mmdet_drop_codes(x, y, w, h, area, cols.ignore, in_class, width, height)
        sticks_out = (x < -1) | (y < -1) | (x + w > width + 1) | (y + h > height + 1)
        # mmdet tests the overlap first; name the more specific problem
        drop[(drop == _OUTSIDE) & ((w < 1) | (h < 1) | (area <= 0))] = _DEGENERATE
    report.boxes_outside_image = ids[parsed & finite & sticks_out].tolist()
    kept = parsed & finite & (drop == _KEPT)
    with_mask = bool(traits['with_mask'])
    no_segmentation = kept & (cols.segmentation == SEG_NONE) if with_mask else np.zeros_like(kept)
    crowd = kept & ~no_segmentation & cols.iscrowd
    candidates = kept & ~no_segmentation & ~crowd
    if with_mask:
        valid_mask = (cols.segmentation == SEG_POLYGON) | ((cols.segmentation == SEG_RLE) & bool(traits['poly2mask']))
        degenerate_polygon = candidates & (cols.segmentation == SEG_NO_POLYGON)
        invalid_mask = candidates & ~valid_mask & ~degenerate_polygon
    else:
        degenerate_polygon = invalid_mask = np.zeros_like(kept)
    usable = candidates & ~degenerate_polygon & ~invalid_mask
    reasons = {
        'non_finite': parsed & ~finite & (drop != _KEPT),
        'ignore': parsed & finite & (drop == _IGNORE), 'outside': parsed & finite & (drop == _OUTSIDE),
        'degenerate': parsed & finite & (drop == _DEGENERATE),
        'unknown_category': parsed & finite & (drop == _UNKNOWN),
        'crowd': crowd, 'degenerate_polygon': degenerate_polygon, 'invalid_mask': invalid_mask, 'no_image': ~found}
    fatal = {'malformed': malformed, 'non_finite_kept': parsed & ~finite & (drop == _KEPT),
             'no_segmentation': no_segmentation}
    report.reasons = {key: ids[reasons[key]].tolist() for key in DROP_REASONS if reasons[key].any()}
    report.fatal_annotations = {key: ids[fatal[key]].tolist() for key in FATAL_REASONS if fatal[key].any()}

    filter_cfg = dict(filter_cfg or {})
    filter_empty_gt = bool(filter_cfg.get('filter_empty_gt', False)) if filter_cfg else False
    min_size = filter_cfg.get('min_size', 0) if filter_cfg else 0
    no_class = ~np.isin(image_codes, ann_image_codes[in_class]) if filter_empty_gt else np.zeros(image_codes.size, bool)
    too_small = ~no_class & cols.has_size & (_py_min(cols.widths, cols.heights) < min_size)
    report.filtered_images = {key: cols.image_ids[mask].tolist() for key, mask in
                              (('filter_empty_gt', no_class), ('min_size', too_small)) if mask.any()}
    report.filter_empty_gt = filter_empty_gt
    trained = ~no_class & ~too_small

    if image_check != 'off' and check_files:
        missing = set(report.missing_images)
        rows = [i for i in np.flatnonzero(trained).tolist() if osp.join(img_dir, file_names[i]) not in missing]
        result = check_images([osp.join(img_dir, file_names[i]) for i in rows], image_check,
                              sizes=[(cols.widths[i], cols.heights[i]) if cols.has_size[i] else None for i in rows],
                              max_pixels=max_image_pixels)
        report.bad_images = result.bad
        logger.info('%s', result.summary())
    bad_paths = {path for path, _ in report.bad_images}
    good_file = np.array([osp.join(img_dir, name) not in bad_paths for name in file_names], dtype=bool) \
        if bad_paths else np.ones(image_codes.size, dtype=bool)
    with_usable = np.isin(image_codes, ann_image_codes[usable])
    report.trained_images = int(trained.sum())
    report.usable_images = int((trained & with_usable & good_file).sum())
    report.background_images = cols.image_ids[trained & ~with_usable].tolist()
    report.unannotated_images = cols.image_ids[~np.isin(image_codes, ann_image_codes)].tolist()
    report.empty_images = cols.image_ids[~with_usable].tolist()
    return report
