# Direct pre-training (P1x) of Mask R-CNN Swin-T: the whole detector from random init at
# 448x448 with the published Swin-T settings, AdamW, constant LR after warmup and mixed
# precision. Stage 2: mask-rcnn_swin-t-p4-w7_fpn_amp_8xb2-direct-finetune-p1x-1x_coco.py.
_base_ = [
    'mmdet::_base_/models/mask-rcnn_r50_fpn.py',
    './_base_/datasets/coco_instance_direct-pretrain-448.py',
    './_base_/schedules/schedule_direct-pretrain-p1x.py', 'mmdet::_base_/default_runtime.py'
]
custom_imports = dict(imports=['direct_pretrain'], allow_failed_imports=False)

model = dict(
    # _delete_: the base's ResNet-50 arguments (depth, style, torchvision init) do not apply.
    backbone=dict(
        _delete_=True,
        # mmdet's SwinTransformer (same state-dict keys) whose random init also draws the
        # relative position bias tables from N(0, 0.02) as the original Swin does; mmdet's
        # leaves them at 0 when init_cfg is None.
        type='DirectSwinTransformer',
        embed_dims=96,
        depths=[2, 2, 6, 2],
        num_heads=[3, 6, 12, 24],
        window_size=7,
        mlp_ratio=4,
        qkv_bias=True,
        drop_rate=0.,
        attn_drop_rate=0.,
        drop_path_rate=0.2,
        use_abs_pos_embed=False,
        patch_norm=True,
        out_indices=(0, 1, 2, 3),
        norm_cfg=dict(type='LN'),  # published: LayerNorm, so there is no BN to synchronize
        with_cp=False,
        init_cfg=None),
    neck=dict(in_channels=[96, 192, 384, 768]),
    # The published 4conv1fc box head (no norm), kept by the fine-tune.
    roi_head=dict(bbox_head=dict(type='Shared4Conv1FCBBoxHead', conv_out_channels=256)))

optim_wrapper = dict(
    # _delete_: AdamW + AMP replace the shared schedule's SGD wrapper (its momentum and
    # norm_decay_mult would otherwise be merged into the AdamW settings).
    _delete_=True,
    # Native AMP (published: apex O1); with dynamic loss scaling. Needs a CUDA device.
    type='AmpOptimWrapper',
    loss_scale='dynamic',
    optimizer=dict(type='AdamW', lr=4e-4, betas=(0.9, 0.999), weight_decay=0.05),
    paramwise_cfg=dict(
        custom_keys={
            'absolute_pos_embed': dict(decay_mult=0.),
            'relative_position_bias_table': dict(decay_mult=0.),
            'norm': dict(decay_mult=0.)
        }))

# Checkpoints and last_checkpoint are written atomically (a kill mid-write never leaves a
# partial file under its final name): the package's atomic_local file backend.
default_hooks = dict(checkpoint=dict(backend_args=dict(backend='atomic_local')))
