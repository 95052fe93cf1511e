# Direct pre-training (P1x) of a Faster R-CNN whose backbone is a timm model (ResNet-18): the
# zoo's Faster R-CNN recipe (448x448 crops, constant LR, 4conv1fc head) with the backbone
# swapped, BN synchronized over all 64 images of a step on any backend.
# Stage 2: faster-rcnn_timm-resnet18_fpn_8xb2-direct-finetune-p1x-1x_coco.py.
_base_ = '../direct_pretraining/faster-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py'

model = dict(
    # _delete_: mmdet's ResNet-50 arguments (depth, style, zero_init_residual) do not apply to timm.
    backbone=dict(
        _delete_=True,
        type='TimmBackbone',
        model_name='resnet18',
        out_indices=(1, 2, 3, 4),  # timm levels of stride 4/8/16/32
        frozen_stages=-1,
        norm_eval=False,
        norm_cfg=dict(type='SyncBNAnyBackend', requires_grad=True),
        pretrained=False),  # random init, no download
    neck=dict(in_channels=[64, 128, 256, 512]))  # TimmBackbone.out_channels
