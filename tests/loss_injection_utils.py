"""A toy detector whose loss turns NaN/inf, or spikes, at a chosen training step: what the
divergence tests inject through ``custom_imports`` (tests/test_tools/test_non_finite_loss_tool.py,
test_dist_train.py)."""
import os.path as osp

from dp_test_utils import write_tiny_stage_configs

INJECTION = '''
import os
from mmdet.models.detectors import MaskRCNN
from mmdet.registry import MODELS


@MODELS.register_module()
class NaNLossMaskRCNN(MaskRCNN):
    """The toy Mask R-CNN with a non-finite (or, with ``factor``, a huge) classification / box loss
    at one training step of the process, on the ranks listed (default all)."""

    def __init__(self, nan_at, factor=None, ranks=None, **kwargs):
        super().__init__(**kwargs)
        self.nan_at, self.factor, self.ranks, self.steps = nan_at, factor, ranks, 0

    def loss(self, batch_inputs, batch_data_samples):
        losses = super().loss(batch_inputs, batch_data_samples)
        self.steps += 1
        if self.steps == self.nan_at and (self.ranks is None or int(os.environ.get('RANK', 0)) in self.ranks):
            if self.factor:
                losses['loss_cls'] = losses['loss_cls'] * self.factor
            else:
                losses['loss_cls'] = losses['loss_cls'] * float('nan')
                losses['loss_bbox'] = losses['loss_bbox'] + float('inf')
        return losses
'''


def write_injected_config(folder: str, data_root: str, epochs: int, model: str, name: str) -> str:
    """The tiny pretrain config with the injected detector; returns its path. The injection
    module goes to ``folder``, where the runs start (``python -m`` puts the current folder on
    ``sys.path``)."""
    base, _ = write_tiny_stage_configs(osp.join(folder, 'cfg'), data_root, pretrain_epochs=epochs)
    with open(osp.join(folder, 'nan_injection.py'), 'w') as f:
        f.write(INJECTION)
    cfg = osp.join(folder, 'cfg', f'{name}_pretrain.py')
    with open(cfg, 'w') as f:
        f.write(f'_base_ = {base!r}\n'
                "custom_imports = dict(imports=['direct_pretrain', 'nan_injection'], allow_failed_imports=False)\n"
                f'model = {model}\n')
    return cfg
