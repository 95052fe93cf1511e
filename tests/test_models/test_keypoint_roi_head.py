"""KeypointRoIHead: which proposals train the keypoint branch, and a real train step +
inference of the toy keypoint model built from its config."""
import copy
from types import SimpleNamespace

import pytest
import torch
from mmengine.config import Config
from mmengine.dataset import pseudo_collate
from mmengine.registry import DefaultScope, init_default_scope
from mmengine.structures import InstanceData

import direct_pretrain  # noqa: F401
from keypoint_test_utils import TOY_KP_FINETUNE, make_tiny_keypoints
from mmdet.registry import DATASETS, MODELS
from model_test_utils import single_torch_thread  # noqa: F401  (autouse fixture)

init_default_scope('mmdet')


@pytest.fixture(scope='module')
def toy_root(tmp_path_factory):
    return make_tiny_keypoints(str(tmp_path_factory.mktemp('toy_kp_model')), num_train=4, num_val=2)


@pytest.fixture(scope='module')
def cfg(toy_root):
    cfg = Config.fromfile(TOY_KP_FINETUNE)
    cfg.train_dataloader.dataset.data_root = toy_root
    cfg.test_dataloader.dataset.data_root = toy_root
    return cfg


def build_model(cfg):
    torch.manual_seed(0)
    with DefaultScope.overwrite_default_scope('mmdet'):
        return MODELS.build(copy.deepcopy(cfg.model))


def batch(dataset_cfg, indices):
    with DefaultScope.overwrite_default_scope('mmdet'):
        dataset = DATASETS.build(copy.deepcopy(dataset_cfg))
    return pseudo_collate([dataset[i] for i in indices])


def test_keypoint_branch_uses_positive_proposals_with_a_labelled_keypoint_inside(cfg):
    model = build_model(cfg)
    roi_head = model.roi_head
    keypoints = torch.zeros(2, 13, 3)
    keypoints[0, :, :2] = torch.tensor([20.0, 20.0])
    keypoints[0, 0, 2] = 2  # one labelled keypoint at (20, 20)
    keypoints[1, :, :2] = torch.tensor([80.0, 80.0])  # object 1: nothing labelled
    gt = InstanceData(keypoints=keypoints)
    proposals = torch.tensor([[0.0, 0.0, 40.0, 40.0],  # object 0, keypoint inside
                              [30.0, 30.0, 60.0, 60.0],  # object 0, keypoint outside
                              [60.0, 60.0, 100.0, 100.0]])  # object 1, no labelled keypoint
    sampling = SimpleNamespace(pos_priors=proposals, pos_assigned_gt_inds=torch.tensor([0, 0, 1]))
    feats = tuple(torch.randn(1, 64, 128 // s, 128 // s) for s in (4, 8, 16, 32))
    out = roi_head.keypoint_loss(feats, [sampling], [gt])
    torch.testing.assert_close(out['keypoint_rois'], torch.tensor([[0.0, 0.0, 0.0, 40.0, 40.0]]))
    assert out['loss_keypoint']['loss_keypoint'] > 0
    none = roi_head.keypoint_loss(feats, [SimpleNamespace(pos_priors=proposals[2:],
                                                          pos_assigned_gt_inds=torch.tensor([1]))], [gt])
    assert none['loss_keypoint']['loss_keypoint'] == 0  # a dummy RoI keeps the graph, loss 0


def test_toy_model_trains_a_step_and_predicts_keypoints(cfg):
    model = build_model(cfg)
    data = batch(cfg.train_dataloader.dataset, [0, 1])
    model.train()
    inputs = model.data_preprocessor(data, True)
    losses = model.loss(inputs['inputs'], inputs['data_samples'])
    assert {'loss_keypoint', 'loss_cls', 'loss_bbox', 'loss_rpn_cls'} <= set(losses)
    assert torch.isfinite(losses['loss_keypoint']) and losses['loss_keypoint'] > 0
    head = model.roi_head.keypoint_head
    before = head.score_lowres.weight.detach().clone()
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01)
    total, _ = model.parse_losses(losses)
    total.backward()
    assert head.score_lowres.weight.grad.abs().sum() > 0
    optimizer.step()
    assert not torch.equal(head.score_lowres.weight, before)

    model.eval()
    test = batch(cfg.test_dataloader.dataset, [0])
    with torch.no_grad():
        pred = model.test_step(test)[0].pred_instances
    n = len(pred)
    assert n > 0 and pred.keypoints.shape == (n, 13, 2) and pred.keypoint_scores.shape == (n, 13)
    h, w = test['data_samples'][0].ori_shape
    assert (pred.keypoints[..., 0] >= 0).all() and (pred.keypoints[..., 0] <= w).all()
    assert (pred.keypoints[..., 1] >= 0).all() and (pred.keypoints[..., 1] <= h).all()
    # keypoints lie in their (rescaled) boxes
    boxes = pred.bboxes
    assert (pred.keypoints[..., 0] >= boxes[:, None, 0] - 1e-3).all()
    assert (pred.keypoints[..., 0] <= boxes[:, None, 2] + 1e-3).all()
