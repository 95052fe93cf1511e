# COCO detection for the direct pre-training stage: 8 images per GPU at 448x448, the train
# set repeated x4 per epoch. Validation and test keep mmdet's 1333x800 pipeline, so the
# per-epoch COCO eval of the pretrain run is comparable with the fine-tune's.
_base_ = 'mmdet::_base_/datasets/coco_detection.py'

crop_size = (448, 448)
# Padding happens before normalisation here (the 2.x recipe padded after it, with 0), so pad
# with the BGR mean pixel: it normalises to 0, like the original and like the batch padding
# of mmdet's DetDataPreprocessor.
mean_bgr = (104, 116, 124)

train_pipeline = [
    dict(type='LoadImageFromFile', backend_args={{_base_.backend_args}}),
    dict(type='LoadAnnotations', with_bbox=True),
    # The recipe's keep-ratio resize to (448, 448) x U(0.8, 1.2), random 448x448 crop, flip
    # 0.5 and pad to 448x448, in that order, as one transform. LoadImageReduced is left out
    # on purpose: COCO images are ~640 px, so at this scale no libjpeg reduction (>= 2x) fits.
    dict(
        type='DirectPretrainResizeCrop',
        scale=crop_size,
        ratio_range=(0.8, 1.2),
        crop_size=crop_size,
        flip_prob=0.5,
        pad_val=dict(img=mean_bgr, masks=0, seg=255)),
    dict(type='PackDetInputs')
]
train_dataloader = dict(
    batch_size=8,
    num_workers=4,
    # _delete_: the base's CocoDataset moves inside a RepeatDataset (times=4 as published), so
    # its keys must not stay on the wrapper.
    dataset=dict(
        _delete_=True,
        type='RepeatDataset',
        times=4,
        dataset=dict(
            type={{_base_.dataset_type}},
            data_root={{_base_.data_root}},
            ann_file='annotations/instances_train2017.json',
            data_prefix=dict(img='train2017/'),
            filter_cfg=dict(filter_empty_gt=True, min_size=32),
            pipeline=train_pipeline,
            backend_args={{_base_.backend_args}})))
