"""mmdet's ``CocoMetric`` whose per-class AP keys say which task they belong to.

Why: with ``classwise=True`` mmdet 3.3 writes each class's AP as ``coco/<class>_precision``
for bbox and then again for segm, so with ``metric=['bbox', 'segm']`` the mask AP silently
replaces the box AP under the same key and the box values are lost. Here each task is
evaluated by mmdet's own ``compute_metrics`` in turn and its per-class keys are renamed to
``coco/<task>_<class>_precision`` (``coco/bbox_solder joint_precision``,
``coco/segm_solder joint_precision``): the class names are the annotation file's category
names, i.e. the dataset's ``metainfo.classes``. Every other key is mmdet's, unchanged.
"""
from collections import OrderedDict
from typing import Dict, List, Sequence

from mmdet.evaluation.metrics import CocoMetric
from mmdet.registry import METRICS

__all__ = ['CocoClasswiseMetric', 'PER_CLASS_SUFFIX', 'per_class_key', 'use_classwise_metric']

#: mmdet's suffix of a per-class AP key.
PER_CLASS_SUFFIX = '_precision'


def per_class_key(task: str, class_name: str) -> str:
    """The key (without the ``coco/`` prefix) of one class's AP in ``task``."""
    return f'{task}_{class_name}{PER_CLASS_SUFFIX}'


def use_classwise_metric(metric_cfg: dict) -> bool:
    """Evaluate a classwise mmdet ``CocoMetric`` config as :class:`CocoClasswiseMetric` (in
    place), so that box and mask AP of a class do not share one key; True when it changed."""
    if metric_cfg.get('classwise') and metric_cfg.get('type') in ('CocoMetric', 'mmdet.CocoMetric'):
        metric_cfg['type'] = 'CocoClasswiseMetric'
        return True
    return False


@METRICS.register_module()
class CocoClasswiseMetric(CocoMetric):
    """``CocoMetric`` with per-class AP (``classwise`` defaults to True) under task-named keys.

    Args:
        classwise (bool): Per-class AP of every task. Defaults to True.
        **kwargs: ``CocoMetric`` arguments (``ann_file``, ``metric``, ...).
    """

    def __init__(self, classwise: bool = True, **kwargs) -> None:
        super().__init__(classwise=classwise, **kwargs)

    def _class_names(self) -> List[str]:
        return [self._coco_api.loadCats(cat_id)[0]['name'] for cat_id in self.cat_ids]

    def compute_metrics(self, results: list) -> Dict[str, float]:
        """mmdet's metrics, one task at a time when per-class keys would collide."""
        tasks: Sequence[str] = self.metrics
        per_class_tasks = [t for t in tasks if t in ('bbox', 'segm')]
        if not self.classwise or not per_class_tasks:
            return super().compute_metrics(results)
        eval_results: Dict[str, float] = OrderedDict()
        try:
            for task in tasks:
                self.metrics = [task]
                computed = super().compute_metrics(results)  # also initialises the COCO api and cat ids
                if task in per_class_tasks:
                    names = self._class_names()
                    for name in names:
                        key = f'{name}{PER_CLASS_SUFFIX}'
                        if key in computed:
                            computed[per_class_key(task, name)] = computed.pop(key)
                eval_results.update(computed)
        finally:
            self.metrics = list(tasks)
        return eval_results
