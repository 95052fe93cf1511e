# Direct pre-training (P1x) of Faster R-CNN R-50-FPN: the whole detector from random init at
# 448x448, BN trained in train mode and synchronized over all 64 images of a step.
# Stage 2: faster-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py.
_base_ = [
    'mmdet::_base_/models/faster-rcnn_r50_fpn.py',
    './_base_/datasets/coco_detection_direct-pretrain-448.py',
    './_base_/schedules/schedule_direct-pretrain-p1x.py', 'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

model = dict(
    backbone=dict(
        frozen_stages=-1,
        norm_eval=False,
        # SyncBN on any torch.distributed backend (gloo/CPU too); the original used per-GPU BN
        # over 8 images. Keys equal BN's, so the BN fine-tune loads it as is.
        norm_cfg=dict(type='SyncBNAnyBackend', requires_grad=True),
        zero_init_residual=False,  # as published
        init_cfg=None),  # random init: no ImageNet weights
    # The published 4conv1fc box head (no norm), kept by the fine-tune.
    roi_head=dict(bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256)))

# Checkpoints and last_checkpoint are written atomically (a kill mid-write never leaves a
# partial file under its final name): the package's atomic_local file backend.
default_hooks = dict(checkpoint=dict(backend_args=dict(backend='atomic_local')))
