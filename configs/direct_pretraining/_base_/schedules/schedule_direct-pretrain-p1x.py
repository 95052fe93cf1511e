# Direct pre-training schedule P1x: 12 epochs (of the x4 repeated set), SGD at lr 0.08 for
# 8 GPUs x 8 images, no weight decay on norm layers (they are trained from random init),
# and a constant LR after a linear warmup - no step decay, as published.
_base_ = 'mmdet::_base_/schedules/schedule_1x.py'

# A list replaces the base's [LinearLR, MultiStepLR]: warmup only, then the LR stays at lr.
param_scheduler = [dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=500)]

optim_wrapper = dict(
    optimizer=dict(type='SGD', lr=0.08, momentum=0.9, weight_decay=1e-4),
    paramwise_cfg=dict(norm_decay_mult=0.))

# lr 0.08 is for 8 GPUs x 8 images; `tools/train.py --auto-scale-lr` rescales it for other
# world sizes or batch sizes.
auto_scale_lr = dict(enable=False, base_batch_size=64)

# A NaN/inf loss (reported for RetinaNet warmup with some seeds) stops the run at that
# iteration, before the optimizer step, naming the last good checkpoint and the command that
# resumes from it with a lower LR or another seed; checkpoints with NaN weights are never
# written. Skip-and-count instead: --cfg-options custom_hooks.0.action=skip custom_hooks.0.max_skips=K
custom_hooks = [dict(type='NonFiniteLossHook')]
