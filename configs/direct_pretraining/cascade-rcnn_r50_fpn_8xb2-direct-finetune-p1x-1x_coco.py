# Fine-tune (1x) of the directly pre-trained Cascade R-CNN R-50-FPN at 1333x800: the whole
# detector comes from the pretrain stage (load_from, verified key by key by LoadFromCheckHook).
_base_ = 'mmdet::cascade_rcnn/cascade-rcnn_r50_fpn_1x_coco.py'
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

# tools/train.py names this config in its error when load_from does not exist yet.
pretrain_config = 'configs/direct_pretraining/cascade-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py'
load_from = 'work_dirs/cascade-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco/epoch_12.pth'

model = dict(
    backbone=dict(
        # BN frozen: statistics and affine as learned in pretraining on 64-image batches.
        norm_cfg=dict(type='BN', requires_grad=False),
        norm_eval=True,
        frozen_stages=1,  # stem + stage 1, as the stock 1x
        init_cfg=None))  # every weight comes from load_from; no ImageNet download

custom_hooks = [dict(type='LoadFromCheckHook')]

# Checkpoints and last_checkpoint are written atomically (a kill mid-write never leaves a
# partial file under its final name): the package's atomic_local file backend.
default_hooks = dict(checkpoint=dict(backend_args=dict(backend='atomic_local')))
