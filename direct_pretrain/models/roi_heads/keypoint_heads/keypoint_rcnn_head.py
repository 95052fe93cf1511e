"""Detectron's Keypoint R-CNN head (``roi_pose_head_v1convX`` + ``kps_score``) for mmdet.

Why: MMDetection 3.x has no keypoint head. This is the Mask R-CNN paper's keypoint branch as
Detectron built it (``keypoint_rcnn_heads.py``): ``num_convs`` 3x3 convs with ReLU on the
14x14 RoI features, a 4x4 stride-2 transposed conv to K low-resolution heatmaps
(``kps_score_lowres``) and x2 bilinear upsampling to 56x56. Each keypoint is a
``56*56``-way classification over heatmap cells (softmax cross-entropy "across space").

The target encoding and the decoding (Detectron's ``utils/keypoints.py`` conventions) live
in :mod:`direct_pretrain.structures.keypoints`, as detectron2 keeps them in
``structures/keypoints.py``; this file is the head that uses them.

Upsampling: ``'bilinear'`` is ``F.interpolate(align_corners=False)`` (detectron2);
``'caffe2_bilinear'`` is Detectron's ``BilinearInterpolation``: a fixed transposed conv with
the FCN bilinear kernel, which differs from the former on the outermost row and column
(zero padding); use it for converted Detectron weights (the ``kps_score_w`` blob of a
model-zoo file is that kernel, checked by the converter).
"""
from typing import List, Sequence, Union

import torch
import torch.nn.functional as F
from mmcv.cnn import ConvModule
from mmengine.model import BaseModule, ModuleList
from torch import Tensor, nn

from mmdet.registry import MODELS
from mmdet.utils import InstanceList, OptConfigType, OptMultiConfig
from ....structures.keypoints import bilinear_upsample_kernel, heatmaps_to_keypoints, keypoints_to_heatmap_targets

__all__ = ['KeypointRCNNHead']

UPSAMPLE_METHODS = ('bilinear', 'caffe2_bilinear')


@MODELS.register_module()
class KeypointRCNNHead(BaseModule):
    """Keypoint heatmap head of Keypoint R-CNN (Detectron ``roi_pose_head_v1convX``).

    Args:
        num_keypoints (int): K. Defaults to 17 (COCO person).
        num_convs (int): Stacked 3x3 convs (``KRCNN.NUM_STACKED_CONVS``). Defaults to 8.
        in_channels (int): RoI feature channels. Defaults to 256.
        conv_out_channels (int): Conv width (``KRCNN.CONV_HEAD_DIM``). Defaults to 512.
        conv_kernel_size (int): Conv kernel (``KRCNN.CONV_HEAD_KERNEL``). Defaults to 3.
        roi_feat_size (int): RoI feature side (``KRCNN.ROI_XFORM_RESOLUTION``). Defaults to 14.
        up_scale (int): Final upsampling factor (``KRCNN.UP_SCALE``); the heatmap side is
            ``roi_feat_size * 2 * up_scale``. Defaults to 2.
        upsample_method (str): ``'bilinear'`` or ``'caffe2_bilinear'`` (see the module
            docstring). Defaults to 'bilinear'.
        loss_weight (float): Loss weight (``KRCNN.LOSS_WEIGHT``). Defaults to 1.0.
        loss_normalizer (str | float): ``'visible'``: divide the summed cross-entropy by the
            number of visible keypoints in the batch (``NORMALIZE_BY_VISIBLE_KEYPOINTS``); a
            number: divide by that count per image times the number of images, Detectron's
            alternative (``BATCH_SIZE_PER_IM * FG_FRACTION * NUM_KEYPOINTS``, e.g.
            512 * 0.25 * 17 = 2176, with ``loss_weight`` 4). Defaults to 'visible'.
        conv_cfg (dict, optional): Conv config. Defaults to None.
        norm_cfg (dict, optional): Norm after each conv (Detectron: none). Defaults to None.
        init_cfg (dict, optional): Detectron's MSRAFill (Kaiming normal, fan-out), zero bias.
    """

    def __init__(self,
                 num_keypoints: int = 17,
                 num_convs: int = 8,
                 in_channels: int = 256,
                 conv_out_channels: int = 512,
                 conv_kernel_size: int = 3,
                 roi_feat_size: int = 14,
                 up_scale: int = 2,
                 upsample_method: str = 'bilinear',
                 loss_weight: float = 1.0,
                 loss_normalizer: Union[str, float] = 'visible',
                 conv_cfg: OptConfigType = None,
                 norm_cfg: OptConfigType = None,
                 init_cfg: OptMultiConfig = dict(
                     type='Kaiming', layer=['Conv2d', 'ConvTranspose2d'], mode='fan_out', nonlinearity='relu',
                     distribution='normal', bias=0)) -> None:
        super().__init__(init_cfg=init_cfg)
        name = type(self).__name__
        if upsample_method not in UPSAMPLE_METHODS:
            raise ValueError(f'{name}: upsample_method must be one of {UPSAMPLE_METHODS}, got {upsample_method!r}')
        if up_scale < 1 or (upsample_method == 'caffe2_bilinear' and up_scale % 2):
            raise ValueError(f'{name}: up_scale must be >= 1 (even for caffe2_bilinear), got {up_scale}')
        if not (loss_normalizer == 'visible' or (isinstance(loss_normalizer, (int, float))
                                                 and not isinstance(loss_normalizer, bool) and loss_normalizer > 0)):
            raise ValueError(f"{name}: loss_normalizer must be 'visible' or a positive count per image, "
                             f'got {loss_normalizer!r}')
        self.num_keypoints = num_keypoints
        self.roi_feat_size = roi_feat_size
        self.up_scale = up_scale
        self.heatmap_size = roi_feat_size * 2 * up_scale
        self.upsample_method = upsample_method
        self.loss_weight = float(loss_weight)
        self.loss_normalizer = loss_normalizer
        self.convs = ModuleList()
        for i in range(num_convs):
            self.convs.append(
                ConvModule(in_channels if i == 0 else conv_out_channels, conv_out_channels, conv_kernel_size,
                           padding=conv_kernel_size // 2, conv_cfg=conv_cfg, norm_cfg=norm_cfg))
        last = conv_out_channels if num_convs else in_channels
        # Detectron kps_score_lowres: ConvTranspose, kernel 4, pad 1, stride 2 -> 2x.
        self.score_lowres = nn.ConvTranspose2d(last, num_keypoints, 4, stride=2, padding=1)
        if upsample_method == 'caffe2_bilinear':
            kernel = torch.from_numpy(bilinear_upsample_kernel(up_scale))
            self.register_buffer('upsample_kernel', kernel.expand(num_keypoints, 1, *kernel.shape).clone(),
                                 persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """RoI features (R, C, s, s) -> heatmap logits (R, K, S, S)."""
        for conv in self.convs:
            x = conv(x)
        x = self.score_lowres(x)
        if self.up_scale == 1:
            return x
        if self.upsample_method == 'bilinear':
            return F.interpolate(x, scale_factor=self.up_scale, mode='bilinear', align_corners=False)
        return F.conv_transpose2d(x, self.upsample_kernel.to(x.dtype), stride=self.up_scale,
                                  padding=self.up_scale // 2, groups=self.num_keypoints)

    def loss_and_target(self, heatmaps: Tensor, rois: Tensor, keypoints: Tensor, num_images: int) -> dict:
        """Softmax cross-entropy over the S*S cells of each labelled keypoint inside its RoI.

        Args:
            heatmaps (Tensor): (P, K, S, S) logits.
            rois (Tensor): (P, 4) the RoIs the heatmaps were predicted for.
            keypoints (Tensor): (P, K, 3) ground-truth keypoints of each RoI's object.
            num_images (int): Images in the batch (for a fixed ``loss_normalizer``).

        Returns:
            dict: ``loss_keypoint`` (Tensor), ``targets`` and ``valid`` (P, K).
        """
        targets, valid = keypoints_to_heatmap_targets(keypoints, rois, self.heatmap_size)
        flat_valid = valid.reshape(-1)
        if not bool(flat_valid.any()):
            # Keep every parameter in the graph (DDP) but contribute nothing.
            return dict(loss_keypoint=heatmaps.sum() * 0, targets=targets, valid=valid)
        logits = heatmaps.reshape(-1, self.heatmap_size * self.heatmap_size)
        loss = F.cross_entropy(logits[flat_valid], targets.reshape(-1)[flat_valid], reduction='sum')
        if self.loss_normalizer == 'visible':
            normalizer = flat_valid.sum().float()
        else:
            normalizer = float(self.loss_normalizer) * num_images
        return dict(loss_keypoint=self.loss_weight * loss / normalizer, targets=targets, valid=valid)

    def predict_by_feat(self, heatmaps: Sequence[Tensor], results_list: InstanceList, batch_img_metas: List[dict],
                        rescale: bool = False) -> InstanceList:
        """Add ``keypoints`` (N, K, 2) and ``keypoint_scores`` (N, K) to each image's results.

        The boxes in ``results_list`` must be in the network input frame (as the heatmaps);
        with ``rescale`` the keypoints are divided by ``scale_factor`` into the original image.
        ``keypoint_scores`` are heatmap logits (Detectron draws those above 2).
        """
        for image_heatmaps, results, meta in zip(heatmaps, results_list, batch_img_metas):
            decoded = heatmaps_to_keypoints(image_heatmaps, results.bboxes) if len(results) else \
                results.bboxes.new_zeros(0, self.num_keypoints, 4)
            points = decoded[..., :2]
            if rescale and len(results):
                points = points / points.new_tensor(meta['scale_factor'])
            results.keypoints = points
            results.keypoint_scores = decoded[..., 2]
        return results_list

    def extra_repr(self) -> str:
        return (f'num_keypoints={self.num_keypoints}, heatmap_size={self.heatmap_size}, '
                f'upsample_method={self.upsample_method!r}, loss_normalizer={self.loss_normalizer!r}')
