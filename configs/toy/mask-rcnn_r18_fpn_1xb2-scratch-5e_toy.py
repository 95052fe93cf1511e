# Mini reproduction, arm (c): arm (b) - from scratch at high resolution (480x320) - trained
# for the total budget of arm (a) = direct pretrain (4 epochs x2 repeats of 192x192 crops)
# + finetune (2 epochs). The budget is matched in compute, i.e. training wall-clock on the
# same machine, not in image passes: cheap low-resolution passes are the method's whole
# argument, and matching image passes (10 epochs here) would give this arm about twice
# (a)'s compute. Calibrated on 2 CPU cores (docs/mini_repro.md): (a) trained 241 s and a
# from-scratch 480x320 epoch took 49 s, so 241 / 49 = 4.9 -> 5 epochs. LR drops for the
# last epoch, as in the finetune.
_base_ = './mask-rcnn_r18_fpn_1xb2-scratch-2e_toy.py'

train_cfg = dict(max_epochs=5)
param_scheduler = [
    dict(type='LinearLR', start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type='MultiStepLR', begin=0, end=5, by_epoch=True, milestones=[4], gamma=0.1)
]
