"""The ``*-pergpu-bn`` pretrain configs are the published per-GPU BN setting: each is its SyncBN
config with the backbone's norm replaced by plain BN, nothing else, and builds plain BN layers."""
import copy

import pytest
from mmengine.registry import init_default_scope
from torch.nn.modules.batchnorm import _BatchNorm

from direct_pretraining_zoo import PERGPU_BN, RECIPE, load_cfg, plain


def test_every_r50_pretrain_has_a_pergpu_bn_variant():
    assert len(PERGPU_BN) == 5


@pytest.mark.parametrize('variant', sorted(PERGPU_BN))
def test_variant_is_its_syncbn_config_with_per_gpu_bn(variant):
    ours, syncbn = plain(load_cfg(variant).to_dict()), plain(load_cfg(PERGPU_BN[variant]).to_dict())
    assert ours['model']['backbone']['norm_cfg'] == RECIPE['pretrain']['published_norm_cfg']
    assert syncbn['model']['backbone']['norm_cfg'] == RECIPE['pretrain']['norm_cfg']
    ours['model']['backbone']['norm_cfg'] = syncbn['model']['backbone']['norm_cfg']
    assert ours == syncbn
    assert 'sync_bn' not in ours  # nothing converts the BN to SyncBN in distributed runs


@pytest.mark.parametrize('variant', sorted(PERGPU_BN))
def test_variant_builds_plain_batch_norm(variant):
    from mmdet.registry import MODELS
    init_default_scope('mmdet')
    backbone = MODELS.build(copy.deepcopy(load_cfg(variant).model.backbone))
    norms = {type(m).__name__ for m in backbone.modules() if isinstance(m, _BatchNorm)}
    assert norms == {'BatchNorm2d'}
