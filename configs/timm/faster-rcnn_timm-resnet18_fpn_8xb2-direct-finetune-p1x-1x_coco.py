# Fine-tune (1x) of the directly pre-trained timm ResNet-18 Faster R-CNN at 1333x800: the
# whole detector comes from the pretrain stage (load_from, checked key by key), the
# backbone's BN is frozen (no grad, eval mode: statistics learned at 64 images per step)
# with stem + stage 1 frozen; FPN and box-head BN stay synchronized over the 8x2 images.
_base_ = 'mmdet::faster_rcnn/faster-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

pretrain_config = 'configs/timm/faster-rcnn_timm-resnet18_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py'
load_from = 'work_dirs/faster-rcnn_timm-resnet18_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco/epoch_12.pth'

norm_cfg = dict(type='SyncBNAnyBackend', requires_grad=True)

model = dict(
    # _delete_: mmdet's ResNet-50 arguments (depth, style, init_cfg=torchvision) do not apply to timm.
    backbone=dict(
        _delete_=True,
        type='TimmBackbone',
        model_name='resnet18',
        out_indices=(1, 2, 3, 4),
        frozen_stages=1,
        norm_eval=True,
        norm_cfg=dict(type='BN', requires_grad=False),
        pretrained=False),
    neck=dict(in_channels=[64, 128, 256, 512], norm_cfg=norm_cfg),
    roi_head=dict(bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256, norm_cfg=norm_cfg)))

# Pipeline, 2 images per GPU, SGD lr 0.02 with 500-iteration warmup and steps at 8 and 11
# come from the base 1x schedule, as the recipe's fine-tune prescribes.
optim_wrapper = dict(paramwise_cfg=dict(norm_decay_mult=0.0))
custom_hooks = [dict(type='LoadFromCheckHook', strict=True)]
