"""Run a trained detector over a folder of images: drawn boxes and masks plus one JSON.

Why: the original release's ``infer_simple`` was how people looked at a model's output.
MMDetection's :class:`~mmdet.apis.DetInferencer` does the work (pipeline from the config,
weights and class names from the checkpoint, :class:`~mmdet.visualization.DetLocalVisualizer`
drawing, a rich progress bar with the time remaining); this module adds what a folder of
real-world files needs: files that are not images, or do not decode, are skipped with a
message instead of ending the run, missing inputs fail up front with the path and the
fix, and all predictions land in one JSON (boxes, labels, class names with the annotation
file's category ids, scores, COCO RLE masks, keypoints).
"""
import json
import logging
import os
import os.path as osp
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple

import mmcv
from mmengine.config import Config

from mmdet.apis import DetInferencer
from ..checkpoint.checkpoint_check import check_checkpoint_file
from ..checkpoint.model_fit import check_checkpoint_fits_model
from ..checkpoint.uri import parse_checkpoint_uri
from ..config.dataset_cfg import iter_leaf_datasets, under_data_root
from ..datasets.coco_reader import read_coco_categories
from ..errors import CheckpointCheckError, DatasetValidationError, InferenceInputError

__all__ = ['IMAGE_EXTENSIONS', 'InferenceResult', 'list_images', 'infer_images', 'category_ids_of']

logger = logging.getLogger(__name__)

IMAGE_EXTENSIONS = ('.jpg', '.jpeg', '.png', '.ppm', '.bmp', '.pgm', '.tif', '.tiff', '.webp')


@dataclass
class InferenceResult:
    """What :func:`infer_images` wrote.

    Attributes:
        images (list[str]): Images inferred, in order.
        skipped (dict[str, str]): File name -> why it was skipped.
        predictions_file (str): The JSON with every image's predictions.
        vis_dir (str): Folder of the drawn images (same file names as the inputs).
    """
    images: List[str]
    skipped: Dict[str, str]
    predictions_file: str
    vis_dir: str
    num_instances: Dict[str, int] = field(default_factory=dict)


def list_images(image_dir: str) -> Tuple[List[Tuple[str, Tuple[int, int]]], Dict[str, str]]:
    """The decodable images of ``image_dir`` (sorted, with (height, width)) and the
    skipped files with the reason. Subfolders are not searched."""
    if not osp.isdir(image_dir):
        raise InferenceInputError(f'image folder {image_dir!r} does not exist or is not a folder; pass a folder '
                                  'of .jpg/.png images.')
    images, skipped = [], {}
    for name in sorted(os.listdir(image_dir)):
        path = osp.join(image_dir, name)
        if not osp.isfile(path):
            continue
        if not name.lower().endswith(IMAGE_EXTENSIONS):
            skipped[name] = f'not an image (extension not one of {", ".join(IMAGE_EXTENSIONS)})'
            continue
        try:
            with open(path, 'rb') as f:
                img = mmcv.imfrombytes(f.read())
        except Exception as error:  # noqa: BLE001  (any decoder failure means: skip this file)
            img, reason = None, f'cannot be decoded ({type(error).__name__}: {error})'
        else:
            reason = 'cannot be decoded (empty or corrupt image file)'
        if img is None:
            skipped[name] = reason
            continue
        images.append((path, img.shape[:2]))
    return images, skipped


def _check_inputs(config: str, checkpoint: str) -> None:
    if not osp.isfile(config):
        raise InferenceInputError(f'config file {config!r} does not exist; pass the .py config the checkpoint was '
                                  'trained with (e.g. one under configs/).')
    if parse_checkpoint_uri(checkpoint).scheme == 'file' and not osp.isfile(checkpoint):
        raise InferenceInputError(f'checkpoint {checkpoint!r} does not exist; pass a .pth written by tools/train.py '
                                  '(e.g. work_dirs/<config name>/epoch_N.pth).')
    try:
        if check_checkpoint_file(checkpoint) is not None:  # a local file: it must fill the model, finite
            cfg = Config.fromfile(config)
            check_checkpoint_fits_model(checkpoint, cfg.model, config_name=f'the config {config}',
                                        default_scope=cfg.get('default_scope') or 'mmdet')
    except CheckpointCheckError as error:  # empty, truncated, not a checkpoint, unsafe, does not fit, NaN
        raise InferenceInputError(str(error)) from error


def category_ids_of(cfg: Config, classes: Optional[Sequence[str]]) -> Tuple[Optional[List[Optional[int]]],
                                                                              Optional[str]]:
    """The annotation file's category id of each class, and the file they come from.

    The checkpoint's ``dataset_meta`` holds only the class names, so the ids come from the
    categories of the config's annotation file (the test dataset's, else val's, else train's):
    mmdet's ``CocoDataset`` and ``CocoMetric`` map label ``i`` to the ``i``-th of the file's
    categories whose name is among the classes, in the file's order, which is repeated here, so
    the ids are the ones ``dp-test`` writes into COCO results. (None, None) when no annotation
    file of the config can be read; a class name the file lacks gets None.
    """
    if not classes:
        return None, None
    for _, ds in iter_leaf_datasets(cfg, ('test_dataloader', 'val_dataloader', 'train_dataloader')):
        path = under_data_root(ds.get('ann_file') or '', ds.get('data_root') or '')
        if not path.endswith('.json') or not osp.isfile(path):
            continue
        try:
            categories = read_coco_categories(path)  # COCO's layout: its last MiB, not a 450 MB json.load
        except DatasetValidationError:
            continue
        wanted = set(classes)
        matched = [c for c in categories if c.get('name') in wanted]  # pycocotools' getCatIds(catNms=...)
        ids: List[Optional[int]] = [int(c['id']) for c in matched] + [None] * (len(classes) - len(matched))
        by_name = {c['name']: int(c['id']) for c in matched}
        if [by_name.get(name) for name in classes] != ids:
            logger.warning('category ids: the checkpoint\'s classes %s are not the categories of %s in the file\'s '
                           'order, so mmdet\'s label -> category mapping (file order) differs from the names; the '
                           'ids written follow mmdet (what the model was trained on)', list(classes), path)
        return ids, path
    logger.warning('category ids: none of the config\'s annotation files can be read (test, val, train); '
                   'predictions.json carries class names only')
    return None, None


def _instances(prediction: dict, sample, classes: Optional[tuple], category_ids: Optional[List[Optional[int]]],
               score_thr: float) -> List[dict]:
    """The JSON instances of one image above ``score_thr``: box, label, class name, the file's
    category id, RLE mask and, for Keypoint R-CNN, each keypoint's ``[x, y, score]``."""
    instances = []
    masks = prediction.get('masks') or [None] * len(prediction['labels'])
    pred = sample.pred_instances
    keypoints = pred.keypoints.cpu().numpy() - 0.5 if 'keypoints' in pred else None  # COCO's pixel-index frame
    keypoint_scores = pred.keypoint_scores.cpu().numpy() if 'keypoint_scores' in pred else None
    for index, (label, score, bbox, mask) in enumerate(
            zip(prediction['labels'], prediction['scores'], prediction['bboxes'], masks)):
        if score < score_thr:
            continue
        instance = dict(label=int(label), score=float(score), bbox=[float(v) for v in bbox])
        if classes is not None and 0 <= label < len(classes):
            instance['class'] = classes[label]
            if category_ids is not None:
                instance['category_id'] = category_ids[label]
        if mask is not None:
            instance['mask'] = dict(size=list(mask['size']), counts=mask['counts'])
        if keypoints is not None:
            scores = keypoint_scores[index] if keypoint_scores is not None else [None] * len(keypoints[index])
            instance['keypoints'] = [[float(x), float(y), None if s is None else float(s)]
                                     for (x, y), s in zip(keypoints[index], scores)]
        instances.append(instance)
    return instances


def infer_images(config: str, checkpoint: str, image_dir: str, out_dir: str, score_thr: float = 0.3,
                 device: Optional[str] = None, batch_size: int = 1) -> InferenceResult:
    """Predict every image of ``image_dir``; write ``out_dir/vis/<image>`` and
    ``out_dir/predictions.json``.

    Args:
        config (str): The model's config file.
        checkpoint (str): Its checkpoint (class names are read from the checkpoint's meta).
        image_dir (str): Folder of images; other files are skipped with a message.
        out_dir (str): Output folder, created if needed.
        score_thr (float): Instances below this score are neither drawn nor written.
            Defaults to 0.3.
        device (str, optional): 'cpu', 'cuda:0', ... Defaults to CUDA when available.
        batch_size (int): Images per forward pass. Defaults to 1.

    Raises:
        InferenceInputError: Missing config / checkpoint / folder, or no image to infer.
    """
    _check_inputs(config, checkpoint)
    images, skipped = list_images(image_dir)
    for name, reason in skipped.items():
        logger.warning('skipping %s: %s', osp.join(image_dir, name), reason)
    if not images:
        raise InferenceInputError(f'no image to infer in {image_dir!r}' +
                                  (f' ({len(skipped)} file(s) skipped, see above)' if skipped else ' (empty)') +
                                  f'; put {", ".join(IMAGE_EXTENSIONS[:2])} or other image files there.')
    inferencer = DetInferencer(model=config, weights=checkpoint, device=device, show_progress=True)
    dataset_meta = inferencer.model.dataset_meta or {}
    classes = tuple(dataset_meta.get('classes') or ()) or None
    category_ids, categories_file = category_ids_of(inferencer.cfg, classes)
    os.makedirs(out_dir, exist_ok=True)
    # data samples, not mmdet's dicts: those drop the keypoints of Keypoint R-CNN
    outputs = inferencer([path for path, _ in images], batch_size=batch_size, out_dir=out_dir,
                         pred_score_thr=score_thr, no_save_pred=True, return_datasamples=True)
    records, counts = [], {}
    for (path, (height, width)), sample in zip(images, outputs['predictions']):
        instances = _instances(inferencer.pred2dict(sample), sample, classes, category_ids, score_thr)
        counts[osp.basename(path)] = len(instances)
        records.append(dict(file=osp.basename(path), height=int(height), width=int(width), instances=instances))
    predictions_file = osp.join(out_dir, 'predictions.json')
    header = dict(config=config, checkpoint=checkpoint, score_thr=score_thr, classes=classes,
                  category_ids=category_ids, category_ids_from=categories_file)
    if dataset_meta.get('keypoint_names'):
        header.update(keypoint_names=list(dataset_meta['keypoint_names']),
                      keypoint_format='[x, y, score] per keypoint, in keypoint_names order; x, y in pixels as COCO '
                      'annotation files write them (pixel indices)')
    with open(predictions_file, 'w') as f:
        json.dump(dict(header, bbox_format='xyxy (pixels)', mask_format='COCO RLE', images=records, skipped=skipped),
                  f, indent=1)
    logger.info('%d image(s) inferred, %d skipped; drawings in %s, predictions in %s', len(records), len(skipped),
                osp.join(out_dir, 'vis'), predictions_file)
    return InferenceResult([p for p, _ in images], skipped, predictions_file, osp.join(out_dir, 'vis'), counts)
