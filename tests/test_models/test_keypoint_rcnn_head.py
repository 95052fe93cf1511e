"""KeypointRCNNHead: Detectron's target encoding, decoding, loss and upsampling.

References are written here from Detectron's ``utils/keypoints.py`` (per-keypoint loops in
numpy) and its ``BilinearInterpolation`` (a full (K, K, 4, 4) transposed conv), not from the
package's vectorised code.
"""
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from model_test_utils import single_torch_thread  # noqa: F401  (autouse fixture)

from direct_pretrain.models.roi_heads import KeypointRCNNHead
from direct_pretrain.structures.keypoints import (bilinear_upsample_kernel, heatmaps_to_keypoints,
                                                  keypoints_to_heatmap_targets)


def detectron_heatmap_labels(keypoints: np.ndarray, rois: np.ndarray, size: int):
    """Detectron keypoints_to_heatmap_labels, keypoints as (N, 3, K) like Detectron."""
    heatmaps = np.zeros((len(rois), keypoints.shape[2]), np.float32)
    weights = np.zeros_like(heatmaps)
    scale_x = size / (rois[:, 2] - rois[:, 0])
    scale_y = size / (rois[:, 3] - rois[:, 1])
    for kp in range(keypoints.shape[2]):
        vis = keypoints[:, 2, kp] > 0
        x = keypoints[:, 0, kp].astype(np.float32)
        y = keypoints[:, 1, kp].astype(np.float32)
        xb, yb = np.where(x == rois[:, 2])[0], np.where(y == rois[:, 3])[0]
        x = np.floor((x - rois[:, 0]) * scale_x)
        x[xb] = size - 1
        y = np.floor((y - rois[:, 1]) * scale_y)
        y[yb] = size - 1
        valid = (x >= 0) & (y >= 0) & (x < size) & (y < size) & vis
        heatmaps[:, kp] = (y * size + x) * valid
        weights[:, kp] = valid
    return heatmaps, weights


def random_rois_and_keypoints(num_rois=6, num_keypoints=5, seed=0, min_size=60.0, max_size=300.0):
    rng = np.random.default_rng(seed)
    x1, y1 = rng.uniform(0, 200, (2, num_rois))
    w, h = rng.uniform(min_size, max_size, (2, num_rois))
    rois = np.stack([x1, y1, x1 + w, y1 + h], 1).astype(np.float32)
    # keypoints mostly inside, some outside, some unlabelled
    kx = rois[:, :1] + rng.uniform(-0.2, 1.2, (num_rois, num_keypoints)) * (rois[:, 2:3] - rois[:, :1])
    ky = rois[:, 1:2] + rng.uniform(-0.2, 1.2, (num_rois, num_keypoints)) * (rois[:, 3:4] - rois[:, 1:2])
    v = rng.choice([0, 1, 2], (num_rois, num_keypoints), p=[0.2, 0.2, 0.6])
    keypoints = np.stack([kx, ky, v], -1).astype(np.float32)
    # boundary cases of Detectron's shift-in rule
    keypoints[0, 0] = (rois[0, 2], rois[0, 3], 2)
    keypoints[1, 1] = (rois[1, 0], rois[1, 1], 2)
    return rois, keypoints


def test_targets_equal_detectron_keypoints_to_heatmap_labels():
    rois, keypoints = random_rois_and_keypoints(num_rois=40, num_keypoints=17, seed=1)
    targets, valid = keypoints_to_heatmap_targets(torch.from_numpy(keypoints), torch.from_numpy(rois), 56)
    want_heat, want_weight = detectron_heatmap_labels(keypoints.transpose(0, 2, 1), rois, 56)
    np.testing.assert_array_equal(valid.numpy(), want_weight.astype(bool))
    np.testing.assert_array_equal(targets.numpy(), want_heat.astype(np.int64))
    assert valid[0, 0] and targets[0, 0] == 56 * 56 - 1  # on the right/bottom edge -> last cell
    assert valid[1, 1] and targets[1, 1] == 0
    assert 0 < valid.sum() < valid.numel()  # the sample has both kinds


def test_encoded_keypoint_decodes_into_the_same_cell():
    """encode -> heatmap peaked at the target cell -> decode -> encode: same cell, and the
    decoded point lies within one cell of the original."""
    size = 56
    rois, keypoints = random_rois_and_keypoints(num_rois=8, num_keypoints=6, seed=2)
    keypoints[..., 2] = 2
    keypoints[..., 0] = np.clip(keypoints[..., 0], rois[:, :1], rois[:, 2:3] - 1e-3)
    keypoints[..., 1] = np.clip(keypoints[..., 1], rois[:, 1:2], rois[:, 3:4] - 1e-3)
    kps, boxes = torch.from_numpy(keypoints), torch.from_numpy(rois)
    targets, valid = keypoints_to_heatmap_targets(kps, boxes, size)
    assert valid.all()
    cy, cx = targets // size, targets % size
    grid_y, grid_x = torch.meshgrid(torch.arange(size), torch.arange(size), indexing='ij')
    # a smooth peak (no ringing under bicubic resizing) centred on each target cell
    heatmaps = -((grid_x[None, None] - cx[..., None, None])**2 + (grid_y[None, None] - cy[..., None, None])**2)
    decoded = heatmaps_to_keypoints(heatmaps.float() * 0.5, boxes)
    assert decoded.shape == (8, 6, 4)
    again, again_valid = keypoints_to_heatmap_targets(torch.cat([decoded[..., :2], kps[..., 2:]], -1), boxes, size)
    assert again_valid.all()
    torch.testing.assert_close(again, targets, rtol=0, atol=0)
    cell = (boxes[:, 2:] - boxes[:, :2]) / size
    assert ((decoded[..., :2] - kps[..., :2]).abs() <= cell[:, None, :] + 1e-3).all()
    assert (decoded[..., 3] > 0).all() and (decoded[..., 3] <= 1).all()


def test_decoding_follows_detectron_sub_cell_offset():
    """A one-hot at full resolution decodes to Detectron's (x_int + 0.5) * w / ceil(w) + x1."""
    heatmaps = torch.zeros(1, 1, 56, 56)
    roi = torch.tensor([[10.0, 20.0, 66.5, 76.5]])  # 56.5 wide: map resized to 57, correction 56.5/57
    heatmaps[0, 0, 30, 40] = 10.0
    out = heatmaps_to_keypoints(heatmaps, roi)[0, 0]
    resized = F.interpolate(heatmaps, size=(57, 57), mode='bicubic', align_corners=False)[0, 0]
    y_int, x_int = divmod(int(resized.argmax()), 57)
    assert out[0].item() == pytest.approx((x_int + 0.5) * 56.5 / 57 + 10.0, abs=1e-4)
    assert out[1].item() == pytest.approx((y_int + 0.5) * 56.5 / 57 + 20.0, abs=1e-4)
    assert out[2].item() == pytest.approx(resized.max().item(), abs=1e-5)


def test_loss_equals_hand_computation():
    """2 RoIs x 3 keypoints on a 4x4 heatmap: mean over visible keypoints of -log softmax."""
    head = KeypointRCNNHead(num_keypoints=3, num_convs=0, in_channels=4, roi_feat_size=1, up_scale=2)
    assert head.heatmap_size == 4
    gen = torch.Generator().manual_seed(3)
    logits = torch.randn(2, 3, 4, 4, generator=gen, requires_grad=True)
    rois = torch.tensor([[0.0, 0.0, 8.0, 8.0], [10.0, 10.0, 14.0, 18.0]])
    keypoints = torch.tensor([
        [[1.0, 1.0, 2], [7.9, 3.0, 1], [5.0, 5.0, 0]],  # cells (0,0), (3,1); third unlabelled
        [[13.0, 17.0, 2], [9.0, 12.0, 2], [11.5, 10.5, 2]],  # cells (3,3); outside; (1,0)
    ])
    out = head.loss_and_target(logits, rois, keypoints, num_images=1)
    flat = logits.detach().reshape(2, 3, 16)
    hand = [(0, 0, 0 * 4 + 0), (0, 1, 1 * 4 + 3), (1, 0, 3 * 4 + 3), (1, 2, 0 * 4 + 1)]
    nll = [-(flat[r, k].log_softmax(0)[cell]) for r, k, cell in hand]
    assert out['valid'].sum() == 4
    assert out['loss_keypoint'].item() == pytest.approx(float(sum(nll) / 4), rel=1e-6)
    out['loss_keypoint'].backward()
    assert logits.grad[0, 2].abs().sum() == 0 and logits.grad[1, 1].abs().sum() == 0  # no target, no gradient

    fixed = KeypointRCNNHead(num_keypoints=3, num_convs=0, in_channels=4, roi_feat_size=1, up_scale=2,
                             loss_normalizer=10.0, loss_weight=4.0)
    out = fixed.loss_and_target(logits.detach(), rois, keypoints, num_images=2)
    assert out['loss_keypoint'].item() == pytest.approx(float(4.0 * sum(nll) / (10.0 * 2)), rel=1e-6)


def test_no_visible_keypoint_gives_zero_loss_with_a_graph():
    head = KeypointRCNNHead(num_keypoints=2, num_convs=1, in_channels=4, conv_out_channels=4, roi_feat_size=2)
    heatmaps = head(torch.randn(1, 4, 2, 2))
    out = head.loss_and_target(heatmaps, torch.tensor([[0.0, 0.0, 4.0, 4.0]]), torch.zeros(1, 2, 3), num_images=1)
    assert out['loss_keypoint'].item() == 0.0
    out['loss_keypoint'].backward()
    assert all(p.grad is not None for p in head.parameters())


def test_upsampling_methods():
    """caffe2_bilinear = Detectron's BilinearInterpolation (full diagonal (K, K, 4, 4) deconv);
    bilinear = align_corners=False interpolation; they agree away from the border."""
    def detectron_filter(size):
        factor = (size + 1) // 2
        center = factor - 1 if size % 2 == 1 else factor - 0.5
        og = np.ogrid[:size, :size]
        return (1 - abs(og[0] - center) / factor) * (1 - abs(og[1] - center) / factor)

    np.testing.assert_allclose(bilinear_upsample_kernel(2), detectron_filter(4), atol=1e-7)
    x = torch.randn(3, 64, 14, 14, generator=torch.Generator().manual_seed(4))
    caffe = KeypointRCNNHead(num_keypoints=5, num_convs=0, in_channels=64, upsample_method='caffe2_bilinear')
    torch_bilinear = KeypointRCNNHead(num_keypoints=5, num_convs=0, in_channels=64)
    torch_bilinear.load_state_dict(caffe.state_dict())
    assert set(caffe.state_dict()) == {'score_lowres.weight', 'score_lowres.bias'}  # the kernel is not a weight
    with torch.no_grad():
        got, smooth = caffe(x), torch_bilinear(x)
        low = caffe.score_lowres(x)
        kernel = np.zeros((5, 5, 4, 4), np.float32)
        kernel[range(5), range(5)] = detectron_filter(4)
        want = F.conv_transpose2d(low, torch.from_numpy(kernel), stride=2, padding=1)
    assert got.shape == smooth.shape == (3, 5, 56, 56)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(got[..., 1:-1, 1:-1], smooth[..., 1:-1, 1:-1], rtol=1e-5, atol=1e-5)
    assert (got[..., 0, :] - smooth[..., 0, :]).abs().max() > 1e-3  # zero padding vs clamping at the border


def test_head_layout_and_bad_arguments():
    head = KeypointRCNNHead()
    assert len(head.convs) == 8 and head.heatmap_size == 56
    assert head.score_lowres.weight.shape == (512, 17, 4, 4)
    with pytest.raises(ValueError, match='upsample_method'):
        KeypointRCNNHead(upsample_method='nearest')
    with pytest.raises(ValueError, match='loss_normalizer'):
        KeypointRCNNHead(loss_normalizer='all')
