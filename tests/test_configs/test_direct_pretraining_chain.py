"""``./dist_train.sh <pretrain> 8`` then ``./dist_train.sh <finetune> 8`` chain with no edits.

Checked with tools/train.py's own config building (``build_train_config``) from a scratch
working directory: before the pretrain ran, the fine-tune stops with one error naming the
checkpoint it expects and the command that writes it; once the pretrain's final checkpoint
exists where train.py writes it, the fine-tune config is accepted as is. Also: the pretrain
train pipeline runs on a tiny COCO-format set and yields 448x448 samples.
"""
import copy
import json
import os
import os.path as osp

import cv2
import numpy as np
import pytest
import torch
from direct_pretraining_zoo import CONFIG_DIR, PAIRS, load_cfg

from direct_pretrain.cli.train import build_config as build_train_config, parse_args as parse_train_args
from direct_pretrain.config.paths import final_checkpoint_name
from direct_pretrain.datasets import TOY_CLASSES
from direct_pretrain.errors import ConfigInputError

pytestmark = pytest.mark.slow  # train.py's checks on every zoo pair


@pytest.fixture(scope='module')
def fake_coco(tmp_path_factory) -> str:
    """A COCO-format set where the configs expect COCO (``data/coco``), for train.py's checks: the
    80 COCO categories and 200 one-box images, so that the recipe's warmups (hundreds of
    iterations) fit into its schedules on one process."""
    from mmdet.datasets import CocoDataset
    root = str(tmp_path_factory.mktemp('fake_coco'))
    jpeg = cv2.imencode('.jpg', np.full((64, 64, 3), 128, np.uint8))[1].tobytes()
    images = [dict(id=i, file_name=f'{i}.jpg', width=64, height=64) for i in range(1, 201)]
    coco = dict(images=images,
                annotations=[dict(id=i['id'], image_id=i['id'], category_id=1, bbox=[8, 8, 16, 16], area=256,
                                  iscrowd=0, segmentation=[[8, 8, 24, 8, 24, 24, 8, 24]]) for i in images],
                categories=[dict(id=i, name=name) for i, name in enumerate(CocoDataset.METAINFO['classes'], 1)])
    os.makedirs(osp.join(root, 'annotations'))
    for split in ('train2017', 'val2017'):
        os.makedirs(osp.join(root, split))
        for image in images:
            with open(osp.join(root, split, image['file_name']), 'wb') as f:
                f.write(jpeg)
        with open(osp.join(root, f'annotations/instances_{split}.json'), 'w') as f:
            json.dump(coco, f)
    return root


def write_pretrain_checkpoint(cfg, path: str) -> None:
    """What the pretrain run writes, as far as train.py's checks read it: every tensor of the
    pretrain model by name and shape (zeros, one stored value each) and the last epoch."""
    from mmdet.registry import MODELS
    try:
        with torch.device('meta'):  # names and shapes only: nothing allocated or initialised
            model = MODELS.build(copy.deepcopy(cfg.model))
    except Exception:  # noqa: BLE001  (a module that computes a tensor while it is built)
        model = MODELS.build(copy.deepcopy(cfg.model))
    state = {k: torch.zeros((), dtype=v.dtype).expand(v.shape) for k, v in model.state_dict().items()}
    torch.save(dict(state_dict=state, meta=dict(epoch=cfg.train_cfg.max_epochs)), path)


@pytest.mark.parametrize('pair', PAIRS, ids=[p.name for p in PAIRS])
def test_finetune_chains_onto_the_pretrain_run(pair, tmp_path, fake_coco):
    # the working directory is tmp_path (conftest)
    pretrain_cfg, finetune_cfg = osp.join(CONFIG_DIR, pair.pretrain), osp.join(CONFIG_DIR, pair.finetune)

    # Before the pretrain ran: one clear error (checked before the dataset paths).
    with pytest.raises(ConfigInputError) as info:
        build_train_config(parse_train_args([finetune_cfg]))
    message = str(info.value)
    assert f"load_from checkpoint '{pair.checkpoint}' does not exist" in message
    assert f'./dist_train.sh configs/direct_pretraining/{pair.pretrain} <GPUS>' in message
    assert not (tmp_path / 'work_dirs').exists()

    # Where train.py writes the pretrain's last checkpoint (default work dir, last epoch) ...
    os.makedirs('data')
    os.symlink(fake_coco, 'data/coco')
    pretrain = build_train_config(parse_train_args([pretrain_cfg]))
    written = osp.join(pretrain.work_dir, final_checkpoint_name(pretrain))
    assert osp.normpath(written) == osp.normpath(pair.checkpoint)
    os.makedirs(osp.dirname(written))
    write_pretrain_checkpoint(pretrain, written)
    # ... is what the fine-tune loads, with no edits or overrides.
    finetune = build_train_config(parse_train_args([finetune_cfg]))
    assert finetune.load_from == pair.checkpoint and osp.isfile(finetune.load_from)


@pytest.mark.parametrize('name, with_mask', [(PAIRS[1].pretrain, False), (PAIRS[3].pretrain, True)],
                         ids=['detection', 'instance'])
def test_pretrain_pipeline_yields_448_samples(name, with_mask, tiny_coco_root):
    from mmengine.registry import init_default_scope

    from mmdet.registry import DATASETS
    init_default_scope('mmdet')
    wrapper = copy.deepcopy(load_cfg(name).train_dataloader.dataset)
    wrapper.dataset.update(data_root=tiny_coco_root, ann_file='annotations/instances_train.json',
                           data_prefix=dict(img='train/'), metainfo=dict(classes=TOY_CLASSES),
                           filter_cfg=dict(filter_empty_gt=True, min_size=4))
    dataset = DATASETS.build(wrapper)
    assert len(dataset) == 4 * len(dataset.dataset) > 0
    np.random.seed(0)
    for index in range(3):
        sample = dataset[index]
        img, meta = sample['inputs'], sample['data_samples']
        # the 448 canvas is fed; img_shape is the crop's content (what RPN clipping uses)
        content_h, content_w = meta.img_shape
        assert tuple(img.shape) == (3, 448, 448) and content_h <= 448 and content_w <= 448
        boxes = meta.gt_instances.bboxes.tensor
        assert len(boxes) > 0 and boxes.min() >= 0
        assert boxes[:, 2].max() <= content_w and boxes[:, 3].max() <= content_h
        assert ('masks' in meta.gt_instances) == with_mask
        if with_mask:
            assert tuple(meta.gt_instances.masks.masks.shape[1:]) == (448, 448)
        # Padding (bottom/right) is the mean pixel, i.e. 0 after normalisation, as in the original.
        resized_h = round(meta.ori_shape[0] * meta.scale_factor[1])
        assert content_h == min(448, resized_h)
        if content_h < 448:
            assert (img[:, content_h:, :] == img.new_tensor([104, 116, 124]).view(3, 1, 1)).all()
