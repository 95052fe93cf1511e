"""Validate COCO-format training sets once, before training starts.

Why: a missing image or a class-name typo otherwise surfaces hours into a run, as a
dataloader-worker crash or as a class that silently never trains (mmdet drops config
classes it cannot find in the file). Here the annotation file is read once, up front:
fatal problems stop the run with the first offenders named; the rest (degenerate or
out-of-image boxes, images without annotations) are what mmdet's own parsing and
``filter_cfg`` drop anyway, and are counted so the drop is visible.
"""
import json
import logging
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

__all__ = ['DatasetValidationError', 'CocoValidationReport', 'validate_coco_dataset']

logger = logging.getLogger(__name__)
_SHOW = 5  # offenders named per problem


class DatasetValidationError(ValueError):
    """The dataset cannot be trained on as configured."""


@dataclass
class CocoValidationReport:
    """Counts and first offenders of one annotation file."""
    ann_file: str
    num_images: int = 0
    num_annotations: int = 0
    missing_images: List[str] = field(default_factory=list)
    missing_classes: List[str] = field(default_factory=list)
    unknown_category_annotations: List[int] = field(default_factory=list)
    degenerate_boxes: List[int] = field(default_factory=list)
    boxes_outside_image: List[int] = field(default_factory=list)
    empty_images: List[int] = field(default_factory=list)

    @property
    def fatal(self) -> List[str]:
        problems = []
        if self.missing_images:
            problems.append(f'{len(self.missing_images)} image file(s) missing, e.g. {self.missing_images[:_SHOW]}')
        if self.missing_classes:
            problems.append(f'config classes not among the file\'s categories: {self.missing_classes}')
        return problems

    def summary(self) -> str:
        lines = [f'{self.ann_file}: {self.num_images} images, {self.num_annotations} annotations']
        for name in ('degenerate_boxes', 'boxes_outside_image', 'unknown_category_annotations', 'empty_images'):
            items = getattr(self, name)
            if items:
                lines.append(f'  {name.replace("_", " ")}: {len(items)} (first ids {items[:_SHOW]}); '
                             'dropped as mmdet\'s parsing / filter_cfg does')
        lines += [f'  FATAL: {problem}' for problem in self.fatal]
        return '\n'.join(lines)


def validate_coco_dataset(ann_file: str, img_dir: str, classes: Optional[Sequence[str]] = None,
                          check_files: bool = True) -> CocoValidationReport:
    """Check one COCO annotation file and its image folder.

    Raises:
        DatasetValidationError: the annotation file cannot be read or parsed.
    """
    try:
        with open(ann_file) as f:
            data = json.load(f)
        images, annotations, categories = data['images'], data.get('annotations', []), data['categories']
    except (OSError, ValueError) as error:
        raise DatasetValidationError(f'annotation file {ann_file} is not readable JSON: {error}') from error
    except (KeyError, TypeError) as error:
        raise DatasetValidationError(f'annotation file {ann_file} is not COCO format (needs "images" and '
                                     f'"categories"): missing {error}') from error
    report = CocoValidationReport(ann_file, num_images=len(images), num_annotations=len(annotations))
    names = {c['name'] for c in categories}
    if classes is not None:
        report.missing_classes = [c for c in classes if c not in names]
    wanted_ids = {c['id'] for c in categories if classes is None or c['name'] in classes}
    sizes = {im['id']: (im.get('width', 0), im.get('height', 0)) for im in images}
    if check_files:
        existing = set(os.listdir(img_dir)) if osp.isdir(img_dir) else set()
        for im in images:
            name = im['file_name']
            if (name not in existing) if '/' not in name else not osp.isfile(osp.join(img_dir, name)):
                report.missing_images.append(osp.join(img_dir, name))
    annotated = set()
    for ann in annotations:
        if ann.get('category_id') not in wanted_ids:
            report.unknown_category_annotations.append(ann.get('id'))
            continue
        x, y, w, h = ann.get('bbox', (0, 0, 0, 0))
        width, height = sizes.get(ann.get('image_id'), (0, 0))
        if w < 1 or h < 1 or ann.get('area', 1) <= 0:
            report.degenerate_boxes.append(ann.get('id'))
            continue
        if width and height and (x < -1 or y < -1 or x + w > width + 1 or y + h > height + 1):
            report.boxes_outside_image.append(ann.get('id'))
            if min(x + w, width) - max(x, 0) <= 0 or min(y + h, height) - max(y, 0) <= 0:
                continue  # no overlap with the image: mmdet drops it
        if not ann.get('iscrowd', 0):
            annotated.add(ann.get('image_id'))
    report.empty_images = [im['id'] for im in images if im['id'] not in annotated]
    return report
