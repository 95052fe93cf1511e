"""The toy Keypoint R-CNN pair through the real tools.

``dp-chain`` runs pretrain -> finetune (load_from) -> test on a few toy keypoint images (one
iteration per stage; the chain and its stages forked from the tool server, ``forked_cli.py``);
the test stage evaluates box and keypoint AP (the chain takes the metrics from the config), the
results table and the report show keypoint AP, and the inference tool draws keypoints;
``--eval keypoints`` needs a keypoint config. MMDetection's own ``train.py`` on the keypoint
model: ``test_mmdet_own_tools.py``.
"""
import glob
import json
import os.path as osp

import cv2
import pytest

from forked_cli import run_tool
from keypoint_test_utils import make_tiny_keypoints, write_tiny_keypoint_configs

NUM_TRAIN, NUM_VAL = 2, 1  # one batch of the tiny configs: one iteration per stage

pytestmark = pytest.mark.slow  # real trainings


@pytest.fixture(scope='module')
def kp_chain(tmp_path_factory):
    tmp = str(tmp_path_factory.mktemp('kp_chain'))
    root = make_tiny_keypoints(osp.join(tmp, 'data'), num_train=NUM_TRAIN, num_val=NUM_VAL)
    pre_cfg, ft_cfg = write_tiny_keypoint_configs(osp.join(tmp, 'configs'), root)
    work = osp.join(tmp, 'work')
    run = run_tool('chain', pre_cfg, ft_cfg, '--work-root', work, cwd=tmp, fast_stages=True)
    return dict(tmp=tmp, root=root, pre_cfg=pre_cfg, ft_cfg=ft_cfg, stdout=run.stdout,
                pre_dir=osp.join(work, 'tiny_kp_pretrain'), ft_dir=osp.join(work, 'tiny_kp_finetune'))


def test_chain_trains_finetunes_and_reports_keypoint_ap(kp_chain):
    ft_dir = kp_chain['ft_dir']
    with open(osp.join(ft_dir, 'load_from_report.json')) as f:
        summary = json.load(f)['summary']
    assert summary['num_missing'] == 0 and summary['num_equal'] == summary['num_model_keys']
    with open(osp.join(ft_dir, 'test_metrics.json')) as f:
        metrics = json.load(f)
    for key in ('coco/bbox_mAP', 'coco/keypoints_mAP', 'coco/keypoints_mAP_50', 'coco/keypoints_AR'):
        assert isinstance(metrics[key], float) and 0.0 <= metrics[key] <= 1.0, key
    assert 'keypoints_mAP' in kp_chain['stdout'] and 'bbox_mAP' in kp_chain['stdout']
    with open(osp.join(ft_dir, 'report', 'report.md')) as f:
        assert 'keypoints' in f.read()


def test_infer_draws_predicted_keypoints(kp_chain, tmp_path):
    """tools/infer.py's function with the chain's checkpoint: the config's visualizer draws the
    predicted keypoints (threshold lowered: two training iterations give low heatmap logits)."""
    from direct_pretrain.apis.inference import infer_images
    cfg = tmp_path / 'infer_cfg.py'
    cfg.write_text(f"_base_ = {kp_chain['ft_cfg']!r}\nvisualizer = dict(kpt_score_thr=-1e9)\n")
    out = infer_images(str(cfg), osp.join(kp_chain['ft_dir'], 'epoch_1.pth'), osp.join(kp_chain['root'], 'val'),
                       str(tmp_path / 'out'), score_thr=0.0, device='cpu')
    drawn = sorted(glob.glob(osp.join(out.vis_dir, '*.jpg')))
    assert len(drawn) == NUM_VAL and sum(out.num_instances.values()) > 0
    img = cv2.imread(drawn[0])
    source = cv2.imread(osp.join(kp_chain['root'], 'val', osp.basename(drawn[0])))
    blue = (img[..., 0] > 200) & (img[..., 1] > 80) & (img[..., 1] < 150) & (img[..., 2] < 60)  # left side
    blue_before = (source[..., 0] > 200) & (source[..., 1] > 80) & (source[..., 1] < 150) & (source[..., 2] < 60)
    assert blue.sum() > blue_before.sum()


def test_eval_keypoints_needs_a_keypoint_evaluator(kp_chain):
    from dp_test_utils import TOY_FINETUNE

    from direct_pretrain.apis.testing import build_test_config
    from direct_pretrain.errors import ConfigInputError
    with pytest.raises(ConfigInputError, match='CocoKeypointMetric'):
        build_test_config(TOY_FINETUNE, osp.join(kp_chain['ft_dir'], 'epoch_1.pth'), eval_metrics=['bbox', 'keypoints'],
                          work_dir=osp.join(kp_chain['tmp'], 'bad'))
    cfg = build_test_config(kp_chain['ft_cfg'], osp.join(kp_chain['ft_dir'], 'epoch_1.pth'),
                            eval_metrics=['bbox', 'keypoints'], work_dir=osp.join(kp_chain['tmp'], 'good'))
    assert cfg.test_evaluator.metric == ['bbox', 'keypoints']
