"""The dataset check decides per image what training will use, exactly as mmdet does:
checked against mmdet's own CocoDataset parsing, filter_cfg and stock pipeline, and it
stops the datasets of issue 14 (nothing usable) with the reasons and example ids."""
import json
import math
import shutil

import pytest
from mmengine.registry import init_default_scope

from mmdet.datasets import CocoDataset
from direct_pretrain.datasets import TOY_CLASSES, validate_coco_dataset
from direct_pretrain.datasets.coco_validation import mmdet_parse_drop_reason, pipeline_traits

STOCK_PIPELINE = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True),
                  dict(type='PackDetInputs')]
FILTER = dict(filter_empty_gt=True, min_size=4)


@pytest.fixture()
def dataset(tmp_path, tiny_coco_root):
    root = tmp_path / 'data'
    shutil.copytree(tiny_coco_root, root)
    return root


def edit(root, fn):
    path = root / 'annotations' / 'instances_train.json'
    data = json.loads(path.read_text())
    fn(data)
    path.write_text(json.dumps(data))  # NaN / Infinity are written as JSON's extension, as json.dump does
    return data


def check(root, **kwargs):
    kwargs.setdefault('filter_cfg', FILTER)
    kwargs.setdefault('pipeline', STOCK_PIPELINE)
    return validate_coco_dataset(str(root / 'annotations/instances_train.json'), str(root / 'train'), TOY_CLASSES,
                                 **kwargs)


def mmdet_dataset(root, pipeline=STOCK_PIPELINE, filter_cfg=FILTER) -> CocoDataset:
    init_default_scope('mmdet')
    return CocoDataset(data_root=str(root), ann_file='annotations/instances_train.json',
                       data_prefix=dict(img='train/'), metainfo=dict(classes=TOY_CLASSES), filter_cfg=filter_cfg,
                       pipeline=pipeline)


ADVERSARIAL = [  # (bbox, area, extra) on a 100 x 80 image
    ([10, 10, 20, 20], 400, {}), ([10, 10, math.nan, 20], 400, {}), ([math.nan, 10, 20, 20], 400, {}),
    ([10, 10, math.inf, 20], 400, {}), ([-math.inf, 10, 20, 20], 400, {}), ([10, 10, 20, 20], math.nan, {}),
    ([10, 10, -5, 20], 400, {}), ([10, 10, 0.5, 20], 10, {}), ([10, 10, 20, 20], 0, {}),
    ([120, 10, 20, 20], 400, {}), ([-30, 10, 20, 20], 400, {}), ([-10, -10, 30, 30], 400, {}),
    ([95, 75, 20, 20], 400, {}), ([10, 10, 20, 20], 400, {'category_id': 99}), ([10, 10, 20, 20], 400, {'ignore': 1}),
    ([10, 10, 20, 20], 400, {'iscrowd': 1}), ([99.5, 10, 20, 20], 400, {}),
]


def test_parse_rules_match_mmdet_parse_data_info():
    """Annotation by annotation, the replica keeps exactly what mmdet 3.3 keeps."""
    init_default_scope('mmdet')
    coco = CocoDataset(ann_file='', metainfo=dict(classes=TOY_CLASSES), data_prefix=dict(img=''), lazy_init=True)
    coco.cat_ids = [1, 2, 3, 4]
    coco.cat2label = {i: i - 1 for i in coco.cat_ids}
    img = dict(id=1, file_name='a.jpg', width=100, height=80, img_id=1)
    for bbox, area, extra in ADVERSARIAL:
        ann = dict(id=1, image_id=1, category_id=1, bbox=bbox, area=area, iscrowd=0, segmentation=[[1, 2, 3, 4, 5, 6]])
        ann.update(extra)
        info = coco.parse_data_info(dict(raw_img_info=dict(img), raw_ann_info=[ann]))
        kept_by_mmdet = bool(info['instances'])
        assert (mmdet_parse_drop_reason(ann, 100, 80, set(coco.cat_ids)) is None) == kept_by_mmdet, (bbox, area, extra)


def test_usable_and_trained_images_match_mmdet_with_the_stock_pipeline(dataset):
    """A mixed file: per image, what the check calls usable is what mmdet's dataset and
    stock pipeline really hand to the model as ground truth."""
    images = []

    def corrupt(data):
        by_image = {}
        for ann in data['annotations']:
            by_image.setdefault(ann['image_id'], []).append(ann)
        images.extend(sorted(by_image, key=lambda i: -len(by_image[i])))  # images[3] has several boxes
        for ann in by_image[images[0]]:
            ann['bbox'][2] = math.nan          # all NaN: background
        for ann in by_image[images[1]]:
            ann['iscrowd'] = 1                 # crowd only: background with ignore regions
        for ann in by_image[images[2]]:
            ann['segmentation'] = [[1, 1, 5, 5]]  # 2-point polygons: ignored instances
        by_image[images[3]][0]['bbox'][2] = -4  # one bad box of several: still usable
        for ann in by_image[images[4]]:
            ann['category_id'] = 42            # unknown classes only: filter_empty_gt drops the image
    edit(dataset, corrupt)
    report = check(dataset)
    coco = mmdet_dataset(dataset)
    assert len(coco) == report.trained_images == 7
    with_objects = sum(len(coco[i]['data_samples'].gt_instances) > 0 for i in range(len(coco)))
    assert with_objects == report.usable_images == 4
    assert len(report.background_images) == 3 and not report.fatal
    assert 'trained as pure background' in report.warnings()[0]
    assert report.filtered_images == {'filter_empty_gt': [images[4]]}
    assert sorted(report.background_images) == sorted(images[:3])


@pytest.mark.parametrize('case, reason', [
    ('nan', 'NaN/inf box coordinates'), ('negative_width', 'box width or height below 1 px'),
    ('unknown_category', 'category_id not among the configured classes'),
])
def test_issue_datasets_without_usable_boxes_are_fatal(dataset, case, reason):
    def corrupt(data):
        for ann in data['annotations']:
            if case == 'nan':
                ann['bbox'][2] = math.nan
            elif case == 'negative_width':
                ann['bbox'][2] = -ann['bbox'][2]
            else:
                ann['category_id'] = 77
    data = edit(dataset, corrupt)
    report = check(dataset)
    assert len(report.fatal) == 1
    text = report.fatal[0]
    n = len(data['annotations'])
    assert reason in text and f'{n} of {n} annotations give nothing to learn from' in text
    assert f'e.g. ids {data["annotations"][0]["id"]}' in text
    if case == 'unknown_category':  # filter_empty_gt then drops every image: mmengine's empty-dataset crash
        assert text.startswith('no training image is left') and 'dropped by filter_cfg.filter_empty_gt' in text
    else:  # the images stay and would be learnt as background
        assert text.startswith('none of the 8 training images has an instance to learn from')
        assert '8 image(s) are trained as pure background' in text


def test_degenerate_polygons_with_the_package_pipeline(dataset):
    from dp_test_utils import TOY_PRETRAIN
    from mmengine.config import Config
    pipeline = Config.fromfile(TOY_PRETRAIN).train_pipeline
    assert pipeline_traits(pipeline) == dict(with_mask=True, poly2mask=False, filter_annotations=True)

    def corrupt(data):
        for ann in data['annotations']:
            ann['segmentation'] = [ann['segmentation'][0][:4]]
    edit(dataset, corrupt)
    text = check(dataset, pipeline=pipeline).fatal[0]
    assert 'no polygon with 3 or more points' in text and "FilterAnnotations finds no box left" in text
    assert not check(dataset, pipeline=[dict(type='LoadAnnotations', with_bbox=True)]).fatal  # boxes only: fine


def test_no_annotations_and_no_images(dataset):
    edit(dataset, lambda data: data.update(annotations=[]))
    assert check(dataset).fatal == ['no training image is left: the file has no annotations; 8 image(s) are dropped '
                                    'by filter_cfg.filter_empty_gt (no annotation of a configured class in the file)']
    edit(dataset, lambda data: data.update(images=[]))
    assert check(dataset).fatal == ['the file lists no images']


def test_min_usable_share(dataset):
    def corrupt(data, count):
        images = sorted({a['image_id'] for a in data['annotations']})[:count]
        for ann in data['annotations']:
            if ann['image_id'] in images:
                ann['area'] = 0
    edit(dataset, lambda data: corrupt(data, 4))
    assert not check(dataset, min_usable_share=0.5).fatal
    assert check(dataset).usable_share == 0.5
    edit(dataset, lambda data: corrupt(data, 5))
    fatal = check(dataset, min_usable_share=0.5).fatal
    assert fatal and fatal[0].startswith('only 3 of 8 training images (38%, dataset_check.min_usable_share is 50%)')
    assert not check(dataset, min_usable_share=0.0).fatal


def test_crash_makers_are_fatal(dataset):
    def corrupt(data):
        data['annotations'][0]['bbox'][2] = math.inf  # mmdet keeps it
        data['annotations'][1]['bbox'] = [1, 2, 3]
        del data['annotations'][2]['segmentation']
    data = edit(dataset, corrupt)
    fatal = ' | '.join(check(dataset).fatal)
    anns = data['annotations']
    assert f'infinite box coordinates that mmdet keeps: training would get inf box targets (e.g. ids [{anns[0]["id"]}])' \
        in fatal
    assert "bbox that is not 4 numbers" in fatal and str(anns[1]['id']) in fatal
    assert "KeyError 'mask'" in fatal and str(anns[2]['id']) in fatal


def test_bad_image_files_count_against_the_limit(dataset):
    names = sorted(p.name for p in (dataset / 'train').iterdir())
    (dataset / 'train' / names[0]).write_bytes(b'')
    data = (dataset / 'train' / names[1]).read_bytes()
    (dataset / 'train' / names[1]).write_bytes(data[:len(data) // 2])
    report = check(dataset, image_check='quick', max_bad_images=2)
    assert not report.fatal and report.usable_images == 6
    assert [p.split('/')[-1] for p, _ in report.bad_images] == names[:2]
    assert 'will be skipped during training' in report.warnings()[-1]
    fatal = check(dataset, image_check='quick', max_bad_images=1).fatal
    assert fatal and 'more than dataset_check.max_bad_images=1' in fatal[0] and 'empty file' in fatal[0]
    assert not check(dataset, image_check='off', max_bad_images=0).fatal


@pytest.mark.parametrize('which', ['annotations', 'images'])
def test_duplicate_ids_are_fatal_naming_them(dataset, which):
    """Issue 21: the check said the set was usable; mmdet then asserts on repeated annotation
    ids, and with a repeated image id puts one file's boxes on another file's pixels."""
    def corrupt(data):
        items = data[which]
        items[1]['id'] = items[0]['id']
        items[4]['id'] = items[2]['id']
    data = edit(dataset, corrupt)
    report = check(dataset)
    first, second = data[which][0]['id'], data[which][2]['id']
    fatal = ' | '.join(report.fatal)
    if which == 'annotations':
        assert report.duplicate_annotation_ids == [first, second]
        assert f'2 annotation id(s) used more than once, e.g. ids [{first}, {second}]' in fatal
        assert 'not unique' in fatal
    else:
        assert report.duplicate_image_ids == [first, second]
        assert f'2 image id(s) given to more than one image entry, e.g. ids [{first}, {second}]' in fatal
        assert "on that one file's pixels" in fatal
    if which == 'annotations':  # what mmdet does with such a file: it stops at initialisation
        with pytest.raises(AssertionError, match='not unique'):
            mmdet_dataset(dataset)


def test_wrong_sizes_and_huge_images_are_bad_files(dataset):
    """Quick mode reads the size from the header: a file smaller than the annotation file says,
    and one declared small but above the pixel limit, are bad files (listed, skipped in
    training, fatal above max_bad_images)."""
    import cv2
    import numpy as np
    names = sorted(p.name for p in (dataset / 'train').iterdir())

    def sizes(data):
        by_name = {im['file_name']: im for im in data['images']}
        small = by_name[names[0]]
        cv2.imwrite(str(dataset / 'train' / names[0]), np.zeros((small['height'] // 2, small['width'] // 2, 3),
                                                                  np.uint8))
    edit(dataset, sizes)
    report = check(dataset, image_check='quick', max_bad_images=3, max_image_pixels=10_000)
    bad = dict(report.bad_images)
    assert 'but the annotation file says' in bad[str(dataset / 'train' / names[0])]
    assert all('above dataset_check.max_image_pixels=10000 (not decoded)' in reason
               for path, reason in bad.items() if not path.endswith(names[0]))
    assert len(bad) == 8 and len(report.fatal) == 1 and 'more than dataset_check.max_bad_images=3' in report.fatal[0]
    report = check(dataset, image_check='quick', max_bad_images=3)
    assert [p.split('/')[-1] for p, _ in report.bad_images] == names[:1] and not report.fatal
