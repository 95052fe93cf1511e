# Direct pre-training (P1x) of Cascade R-CNN R-50-FPN (stock 3 x 2fc box heads): the whole
# detector from random init at 448x448, BN trained in train mode and synchronized over all
# 64 images of a step. Stage 2: cascade-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py.
_base_ = [
    'mmdet::_base_/models/cascade-rcnn_r50_fpn.py',
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
        init_cfg=None))  # random init: no ImageNet weights

# Checkpoints and last_checkpoint are written atomically (a kill mid-write never leaves a
# partial file under its final name): the package's atomic_local file backend.
default_hooks = dict(checkpoint=dict(backend_args=dict(backend='atomic_local')))
