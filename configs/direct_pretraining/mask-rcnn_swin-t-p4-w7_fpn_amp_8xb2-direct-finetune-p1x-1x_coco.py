# Fine-tune (1x) of the directly pre-trained Mask R-CNN Swin-T at 1333x800: the whole detector
# comes from the pretrain stage (load_from, verified key by key by LoadFromCheckHook). AdamW
# lr 1e-4, steps at 8 and 11, mixed precision, as published.
_base_ = 'mmdet::swin/mask-rcnn_swin-t-p4-w7_fpn_1x_coco.py'
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

# tools/train.py names this config in its error when load_from does not exist yet.
pretrain_config = 'configs/direct_pretraining/mask-rcnn_swin-t-p4-w7_fpn_amp_8xb8-direct-pretrain-448-p1x_coco.py'
load_from = 'work_dirs/mask-rcnn_swin-t-p4-w7_fpn_amp_8xb8-direct-pretrain-448-p1x_coco/epoch_12.pth'

model = dict(
    # Same module and keys as the pretrain's DirectSwinTransformer (LayerNorm, nothing to
    # freeze statistically; no stage frozen, as the published Swin fine-tune).
    backbone=dict(init_cfg=None),  # every weight comes from load_from; no ImageNet download
    # The pretrained 4conv1fc box head is loaded and fine-tuned.
    roi_head=dict(bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256)))

# The published fine-tune warmed up for 500 iterations (mmdet's Swin config: 1000).
param_scheduler = [
    dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
    dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11], gamma=0.1)
]
# Native AMP (published: apex O1) with dynamic loss scaling; needs a CUDA device. AdamW lr 1e-4
# and the decay exclusions come from the base.
optim_wrapper = dict(type='AmpOptimWrapper', loss_scale='dynamic')
custom_hooks = [dict(type='LoadFromCheckHook')]

# Checkpoints and last_checkpoint are written atomically (a kill mid-write never leaves a
# partial file under its final name): the package's atomic_local file backend.
default_hooks = dict(checkpoint=dict(backend_args=dict(backend='atomic_local')))
