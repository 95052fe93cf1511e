# Fine-tune (1x) of the directly pre-trained timm ResNet-18 Faster R-CNN at 1333x800: the zoo's
# Faster R-CNN fine-tune with the backbone swapped; the whole detector comes from load_from,
# the backbone's BN is frozen and stem + stage 1 are frozen.
_base_ = '../direct_pretraining/faster-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'

pretrain_config = 'configs/timm/faster-rcnn_timm-resnet18_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py'
load_from = 'work_dirs/faster-rcnn_timm-resnet18_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco/epoch_12.pth'

model = dict(
    # _delete_: mmdet's ResNet-50 arguments (depth, style, init_cfg) do not apply to timm.
    backbone=dict(
        _delete_=True,
        type='TimmBackbone',
        model_name='resnet18',
        out_indices=(1, 2, 3, 4),
        frozen_stages=1,
        norm_eval=True,
        norm_cfg=dict(type='BN', requires_grad=False),
        pretrained=False),
    neck=dict(in_channels=[64, 128, 256, 512]))
