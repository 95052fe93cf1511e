"""Size a stage's schedule to a dataset: the recipe's passes over the data, a warmup that fits the run.

Why: the recipe's schedules are written for COCO (118k images, 64 images a step): P1x is 12
epochs of the x4 repeated set, the fine-tune 12 epochs with steps after 8 and 11, each with a
500-iteration warmup (RetinaNet's pretrain: 1000) - about 0.6% of a COCO run. On a 200-image
set with one GPU the pretrain has ~1,200 steps and the fine-tune ~1,200: a 500-step warmup is
40% of the run, and on 50 images it is longer than the whole run, silently. What carries over
from COCO is the number of passes over the data, so epochs and ``RepeatDataset.times`` stay;
what is measured in steps is recomputed from the dataset: the warmup is capped at
:data:`WARMUP_MAX_SHARE` of the stage's optimizer steps, an epoch-based step schedule keeps its
milestones at the same fractions of the stage (8/12 and 11/12), and an iteration-based schedule
(Keypoint R-CNN's fine-tune: Detectron's 90k iterations of 16 images on COCO person keypoints)
becomes the same number of passes over this dataset, milestones, evaluation and checkpoint
intervals scaled with it.
"""
import math
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from mmengine.config import Config

from .dataset_cfg import leaf_dataset, repeat_factor
from .schedulers import OPEN_END, iter_schedulers

__all__ = ['WARMUP_MAX_SHARE', 'ITERATION_SCHEDULE_IMAGES', 'count_trainable_images', 'recipe_train_images',
           'StageSchedule', 'size_schedule', 'scaled_lr']

#: A warmup longer than this share of a stage's optimizer steps is shortened to it. The warmup
#: exists to get a randomly initialised detector past its first unstable steps; the recipe's
#: 500 steps are ~0.6% of a COCO run, and a tenth of the run leaves 90% of a short run at the
#: scheduled LR while still warming up over tens of steps.
WARMUP_MAX_SHARE = 0.1

#: Training images of the COCO files the iteration-based recipe schedules were written for (images
#: mmdet keeps after its filters), so their passes over the data can be carried over. Detectron's
#: keypoint schedule counts ~57k person images with at least one labelled keypoint.
ITERATION_SCHEDULE_IMAGES = {'person_keypoints_train2017.json': 57000, 'instances_train2017.json': 117266}



def count_trainable_images(coco: dict, cat_ids: Sequence[int], filter_cfg: Optional[dict] = None) -> int:
    """Images mmdet trains on: with ``filter_empty_gt``, those with an annotation of one of
    ``cat_ids``; with ``min_size``, those whose shorter side reaches it; with
    ``min_keypoints_per_image`` (``CocoKeypointDataset``), those with that many labelled keypoints."""
    filter_cfg = filter_cfg or {}
    wanted = set(cat_ids)
    with_ann, keypoints = set(), {}
    for ann in coco.get('annotations') or []:
        if ann.get('category_id') in wanted:
            with_ann.add(ann.get('image_id'))
            values = ann.get('keypoints') or []
            if not ann.get('iscrowd'):
                keypoints[ann.get('image_id')] = keypoints.get(ann.get('image_id'), 0) + sum(
                    1 for v in values[2::3] if v)
    min_size = filter_cfg.get('min_size', 0) or 0
    min_kpts = filter_cfg.get('min_keypoints_per_image', 0) or 0
    count = 0
    for im in coco.get('images') or []:
        if filter_cfg.get('filter_empty_gt') and im.get('id') not in with_ann:
            continue
        if min(im.get('width', 0), im.get('height', 0)) < min_size:
            continue
        if min_kpts and keypoints.get(im.get('id'), 0) < min_kpts:
            continue
        count += 1
    return count


def recipe_train_images(cfg: Config) -> Optional[int]:
    """Training images of the dataset ``cfg``'s schedule was written for, when it is one of
    :data:`ITERATION_SCHEDULE_IMAGES` (read before the config is pointed at another dataset)."""
    found = leaf_dataset(cfg, 'train_dataloader')
    ann_file = str(found[1].get('ann_file', '')) if found else ''
    return ITERATION_SCHEDULE_IMAGES.get(ann_file.rsplit('/', 1)[-1])


@dataclass
class StageSchedule:
    """How a stage was sized: the keys changed (with why) and one line for the terminal."""
    changed: Dict[str, str]
    summary: str
    total_steps: int


def _is_warmup(scheduler: dict) -> bool:
    return (not scheduler.get('by_epoch', True) and scheduler.get('type') in ('LinearLR', 'ConstantLR')
            and scheduler.get('begin', 0) == 0 and scheduler.get('end', OPEN_END) < OPEN_END)


def _cap_warmups(cfg: Config, total_steps: int) -> List[str]:
    cap = max(1, math.floor(WARMUP_MAX_SHARE * total_steps))
    notes = []
    for _, scheduler in iter_schedulers(cfg.get('param_scheduler')):
        if _is_warmup(scheduler) and scheduler['end'] > cap:
            notes.append(f'warmup {scheduler["end"]} -> {cap} steps ({WARMUP_MAX_SHARE:.0%} of {total_steps})')
            scheduler['end'] = cap
    return notes


def _plural(count: int, noun: str) -> str:
    return f'{count} {noun}{"" if count == 1 else "s"}'


def _scale(value: int, ratio: float) -> int:
    return max(1, round(value * ratio))


def size_schedule(cfg: Config, num_images: int, world_size: int = 1, accumulate: int = 1,
                  recipe_images: Optional[int] = None) -> StageSchedule:
    """Size ``cfg``'s schedule (changed in place) to ``num_images`` training images.

    Args:
        cfg (Config): A training config with its ``--cfg-options`` applied.
        num_images (int): Training images mmdet keeps (:func:`count_trainable_images`).
        world_size (int): Training processes. Defaults to 1.
        accumulate (int): Batches per optimizer step (``--accumulate``). Defaults to 1.
        recipe_images (int, optional): Training images of the dataset an iteration-based
            schedule was written for (:func:`recipe_train_images`); without it such a schedule
            keeps its length (only the warmup is capped).
    """
    key, _ = leaf_dataset(cfg, 'train_dataloader')
    repeat = repeat_factor(cfg, key)
    batch = int(cfg.train_dataloader.batch_size)
    micro = math.ceil(num_images * repeat / (batch * world_size))  # iterations of one epoch
    steps_per_epoch = max(1, math.ceil(micro / accumulate))
    train_cfg = cfg.get('train_cfg') or {}
    changed: Dict[str, str] = {}
    if train_cfg.get('type') == 'IterBasedTrainLoop' or 'max_iters' in train_cfg:
        return _size_iterations(cfg, num_images, batch * world_size * accumulate, steps_per_epoch, recipe_images)
    epochs = int(train_cfg['max_epochs'])
    total = steps_per_epoch * epochs
    notes = _cap_warmups(cfg, total)
    for _, scheduler in iter_schedulers(cfg.get('param_scheduler')):
        if scheduler.get('type') == 'MultiStepLR' and scheduler.get('by_epoch', True) \
                and scheduler.get('end', epochs) != epochs:
            ratio = epochs / scheduler['end']
            scheduler['milestones'] = [_scale(m, ratio) for m in scheduler['milestones']]
            scheduler['end'] = epochs
            notes.append(f'LR steps at epochs {scheduler["milestones"]} of {epochs}')
    if notes:
        changed['param_scheduler'] = '; '.join(notes)
    times = f' x {repeat:g} repeats' if repeat != 1 else ''
    summary = (f'{_plural(epochs, "epoch")}{times} of {num_images} images = {_plural(total, "step")} of '
               f'{batch * world_size * accumulate} images' + (f'; {"; ".join(notes)}' if notes else ''))
    return StageSchedule(changed, summary, total)


def _size_iterations(cfg: Config, num_images: int, step_images: int, steps_per_epoch: int,
                     recipe_images: Optional[int]) -> StageSchedule:
    train_cfg = cfg.train_cfg
    base_batch = (cfg.get('auto_scale_lr') or {}).get('base_batch_size')
    old = int(train_cfg['max_iters'])
    if not recipe_images or not base_batch:
        notes = _cap_warmups(cfg, old)
        return StageSchedule({'param_scheduler': '; '.join(notes)} if notes else {},
                             f'{old} iterations as configured (not a recipe schedule this can size)', old)
    passes = old * base_batch / recipe_images
    new = max(1, math.ceil(passes * num_images / step_images))
    ratio = new / old
    train_cfg['max_iters'] = new
    for name in ('val_interval', 'val_begin'):
        if name in train_cfg:
            train_cfg[name] = min(new, _scale(train_cfg[name], ratio))
    changed = {'train_cfg': f'{passes:.1f} passes over the data, as the recipe\'s {old} iterations of {base_batch} '
                            f'images over {recipe_images} images: {new} iterations'}
    checkpoint = (cfg.get('default_hooks') or {}).get('checkpoint') or {}
    if checkpoint.get('by_epoch') is False and 'interval' in checkpoint:
        checkpoint['interval'] = min(new, _scale(checkpoint['interval'], ratio))
        changed['default_hooks.checkpoint.interval'] = 'scaled with the schedule'
    for _, scheduler in iter_schedulers(cfg.get('param_scheduler')):
        if scheduler.get('type') == 'MultiStepLR' and not scheduler.get('by_epoch', True):
            scheduler['milestones'] = [_scale(m, ratio) for m in scheduler['milestones']]
            if scheduler.get('end', OPEN_END) < OPEN_END:
                scheduler['end'] = new
    notes = _cap_warmups(cfg, new)
    changed['param_scheduler'] = '; '.join(['LR steps scaled with the schedule', *notes])
    summary = (f'{new} iterations of {step_images} images ({passes:.1f} passes over {num_images} images, '
               f'~{new / steps_per_epoch:.1f} epochs)' + (f'; {"; ".join(notes)}' if notes else ''))
    return StageSchedule(changed, summary, new)


def scaled_lr(cfg: Config, world_size: int = 1, accumulate: int = 1) -> Optional[Tuple[float, float, int, int]]:
    """(config LR, LR after ``--auto-scale-lr``, effective batch, ``base_batch_size``) as
    mmengine scales it (``--accumulate`` counted); None without a numeric LR or base batch."""
    lr = ((cfg.get('optim_wrapper') or {}).get('optimizer') or {}).get('lr')
    base = (cfg.get('auto_scale_lr') or {}).get('base_batch_size')
    if not isinstance(lr, (int, float)) or not base:
        return None
    effective = world_size * int(cfg.train_dataloader.batch_size) * accumulate
    return float(lr), float(lr) * effective / base, effective, int(base)
