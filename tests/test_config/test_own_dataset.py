"""A user's own COCO-format dataset onto a pair: finding the files, the classes in label order,
keypoints, the val split, the schedule sized to the data, and the generated overlays."""
import hashlib
import json
import os
import os.path as osp

import pytest
from dp_test_utils import TOY_FINETUNE, TOY_PRETRAIN
from mmengine.config import Config
from own_dataset_utils import CATEGORIES, KEYPOINT_NAMES, LAYOUTS, make_split, write_own_dataset

from direct_pretrain.config.dataset_classes import DEFAULT_OKS_SIGMA, read_classes, read_keypoints
from direct_pretrain.config.dataset_layout import LAYOUTS as FOUND_LAYOUTS, find_dataset_files
from direct_pretrain.config.overlay_writer import Ref, Setting, render_overlay
from direct_pretrain.config.own_dataset import OwnDatasetRequest, arch_pair, write_own_dataset_configs
from direct_pretrain.config.schedule_sizing import WARMUP_MAX_SHARE, size_schedule
from direct_pretrain.config.val_split import split_train_val
from direct_pretrain.datasets.coco_keypoint_dataset import COCO_PERSON_KEYPOINT_META
from direct_pretrain.errors import ConfigInputError


def _load(path):
    with open(path, encoding='utf-8') as f:
        return json.load(f)


def _digest(folder):
    out = {}
    for base, _, names in os.walk(folder):
        for name in names:
            with open(osp.join(base, name), 'rb') as f:
                out[osp.relpath(osp.join(base, name), folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


# --- finding the files -------------------------------------------------------------------------

@pytest.mark.parametrize('layout', list(LAYOUTS))
def test_each_layout_is_found(tmp_path, layout):
    root = str(tmp_path / 'data')
    files = write_own_dataset(root, layout)
    found = find_dataset_files(root)
    assert (found.train.ann_file, found.train.img_dir) == (files['train_ann'], files['train_img'])
    assert (found.val.ann_file, found.val.img_dir) == (files['val_ann'], files['val_img'])


def test_image_folder_follows_the_file_names(tmp_path):
    """file_name entries that carry a sub-folder ('train/x.jpg') resolve against images/."""
    root = tmp_path / 'data'
    for split in ('train', 'val'):
        data = make_split(str(root / 'images' / split), split, [[3]], CATEGORIES, file_prefix=f'{split}/')
        (root / 'annotations').mkdir(exist_ok=True)
        (root / 'annotations' / f'{split}.json').write_text(json.dumps(data))
    found = find_dataset_files(str(root))
    assert found.train.img_dir == str(root / 'images') and found.val.img_dir == str(root / 'images')


def test_no_layout_names_what_it_looked_for_and_the_flags(tmp_path):
    (tmp_path / 'photos').mkdir()
    (tmp_path / 'labels.json').write_text('{}')
    with pytest.raises(ConfigInputError) as info:
        find_dataset_files(str(tmp_path))
    message = str(info.value)
    assert '\n' not in message and 'no COCO-format training set found' in message
    assert all(layout.description in message for layout in FOUND_LAYOUTS)
    assert '--train-ann FILE --train-img DIR --val-ann FILE --val-img DIR' in message


def test_two_layouts_are_ambiguous(tmp_path):
    root = str(tmp_path / 'data')
    write_own_dataset(root, 'annotations-dir')
    write_own_dataset(root, 'roboflow')
    with pytest.raises(ConfigInputError, match='2 training annotation files') as info:
        find_dataset_files(root)
    assert 'annotations/train.json' in str(info.value) and 'train/_annotations.coco.json' in str(info.value)
    # the explicit files settle it
    found = find_dataset_files(root, 'annotations/train.json', 'images/train', 'annotations/val.json', 'images/val')
    assert found.train.ann_file == osp.join(root, 'annotations/train.json')


def test_explicit_files_win_and_come_in_pairs(tmp_path):
    root = tmp_path / 'data'
    files = write_own_dataset(str(root / 'odd'), 'annotations-dir')
    found = find_dataset_files(str(root), files['train_ann'], files['train_img'], files['val_ann'], files['val_img'])
    assert found.train.ann_file == files['train_ann'] and found.val.img_dir == files['val_img']
    with pytest.raises(ConfigInputError, match='--train-ann needs --train-img'):
        find_dataset_files(str(root), train_ann=files['train_ann'])
    with pytest.raises(ConfigInputError, match="--val-img 'nowhere': no such folder"):
        find_dataset_files(str(root), files['train_ann'], files['train_img'], files['val_ann'], 'nowhere')


def test_images_not_where_the_layout_says(tmp_path):
    root = tmp_path / 'data'
    write_own_dataset(str(root), 'annotations-dir')
    os.rename(root / 'images' / 'train', root / 'pictures')
    with pytest.raises(ConfigInputError, match=r"'train_0.jpg'.*--train-img DIR"):
        find_dataset_files(str(root))


# --- classes in label order ----------------------------------------------------------------------

def test_classes_follow_the_files_category_order(tmp_path):
    files = write_own_dataset(str(tmp_path / 'data'))
    classes = read_classes(_load(files['train_ann']), files['train_ann'], _load(files['val_ann']), files['val_ann'])
    assert classes.names == ('solder joint', 'scratch', 'fissure légère') and classes.ids == (3, 7, 11)
    # listed out of id order: mmdet labels in the order listed, and so do the classes
    shuffled = [CATEGORIES[2], CATEGORIES[0], CATEGORIES[1]]
    files = write_own_dataset(str(tmp_path / 'shuffled'), categories=shuffled)
    classes = read_classes(_load(files['train_ann']), files['train_ann'])
    assert classes.ids == (11, 3, 7) and classes.names == ('fissure légère', 'solder joint', 'scratch')


def test_val_categories_must_match_the_train_files(tmp_path):
    files = write_own_dataset(str(tmp_path / 'data'))
    val = _load(files['val_ann'])
    val['categories'] = val['categories'][::-1]
    with pytest.raises(ConfigInputError, match=r'differ from .*position 0 \(\(11'):
        read_classes(_load(files['train_ann']), files['train_ann'], val, files['val_ann'])


def test_duplicate_category_names_are_refused(tmp_path):
    files = write_own_dataset(str(tmp_path / 'data'))
    train = _load(files['train_ann'])
    train['categories'][1]['name'] = 'solder joint'
    with pytest.raises(ConfigInputError, match="share the name 'solder joint'"):
        read_classes(train, files['train_ann'])


# --- keypoints -----------------------------------------------------------------------------------

def _keypoint_file(tmp_path, names, skeleton=()):
    files = write_own_dataset(str(tmp_path / 'kp'), 'coco-keypoints', keypoints=True)
    coco = _load(files['train_ann'])
    coco['categories'][0].update(keypoints=list(names), skeleton=[list(s) for s in skeleton])
    return coco, files['train_ann']


def test_keypoints_flip_pairs_and_sigmas_from_the_file(tmp_path):
    coco, ann = _keypoint_file(tmp_path, KEYPOINT_NAMES, [[1, 2], [4, 5]])
    ids, kp = read_keypoints(coco, ann)
    assert ids == [5] and kp.names == tuple(KEYPOINT_NAMES) and kp.skeleton == ((0, 1), (3, 4))
    assert kp.flip_indices == (0, 2, 1, 4, 3)
    assert kp.sigmas == (DEFAULT_OKS_SIGMA, ) * 5 and any('OKS sigmas' in n for n in kp.notes)
    # COCO's own 17 keep COCO's sigmas
    coco, ann = _keypoint_file(tmp_path, COCO_PERSON_KEYPOINT_META['keypoint_names'])
    assert read_keypoints(coco, ann)[1].sigmas == tuple(COCO_PERSON_KEYPOINT_META['keypoint_sigmas'])
    # names in another case
    coco, ann = _keypoint_file(tmp_path, ['Head', 'Left Hand', 'Right Hand'])
    assert read_keypoints(coco, ann)[1].flip_indices == (0, 2, 1)


def test_keypoint_flip_pairs_that_cannot_be_derived(tmp_path):
    coco, ann = _keypoint_file(tmp_path, ['nose', 'l_eye', 'r_eye'])
    with pytest.raises(ConfigInputError) as info:
        read_keypoints(coco, ann)
    assert "['l_eye', 'r_eye']" in str(info.value) and '--keypoint-flip-pairs NAME:MIRROR' in str(info.value)
    assert read_keypoints(coco, ann, [('l_eye', 'r_eye')])[1].flip_indices == (0, 2, 1)
    coco, ann = _keypoint_file(tmp_path, ['nose', 'left_eye', 'right_ear'])
    with pytest.raises(ConfigInputError, match=r"\['left_eye', 'right_ear'\] have no right/left mirror"):
        read_keypoints(coco, ann)
    with pytest.raises(ConfigInputError, match="'chin' is not a keypoint"):
        read_keypoints(coco, ann, [('left_eye', 'chin')])


# --- the val split -------------------------------------------------------------------------------

def test_val_split_is_deterministic_keeps_classes_on_both_sides_and_leaves_the_users_files(tmp_path):
    # 10 images: 'solder joint' everywhere, 'scratch' on two, 'fissure légère' on one
    objects = [[3, 7], [3], [3, 11], [3], [3, 7], [3], [3], [3], [3], [3]]
    root = str(tmp_path / 'data')
    files = write_own_dataset(root, with_val=False, train_objects=objects)
    before = _digest(root)
    coco = _load(files['train_ann'])
    first = split_train_val(coco, files['train_ann'], 0.2, str(tmp_path / 'work' / 'a'))
    second = split_train_val(coco, files['train_ann'], 0.2, str(tmp_path / 'work' / 'b'))
    assert _digest(root) == before
    for name in ('train.json', 'val.json'):
        assert _digest(str(tmp_path / 'work' / 'a'))[name] == _digest(str(tmp_path / 'work' / 'b'))[name]
    assert (first.num_train, first.num_val) == (8, 2) and first.classes_without_val == ['fissure légère']
    train, val = _load(first.train_file), _load(first.val_file)
    cats = lambda d: {a['category_id'] for a in d['annotations']}  # noqa: E731
    assert cats(val) == {3, 7} and cats(train) == {3, 7, 11}
    assert {im['id'] for im in train['images']}.isdisjoint(im['id'] for im in val['images'])
    assert train['categories'] == val['categories'] == coco['categories'] and second.num_val == 2


def test_no_val_set_offers_the_split(tmp_path):
    root = str(tmp_path / 'data')
    write_own_dataset(root, with_val=False)
    with pytest.raises(ConfigInputError, match=r'has no validation set .*--val-split 0\.1'):
        write_own_dataset_configs(TOY_PRETRAIN, TOY_FINETUNE, OwnDatasetRequest(root), str(tmp_path / 'work'))
    assert not (tmp_path / 'work').exists()
    made = write_own_dataset_configs(TOY_PRETRAIN, TOY_FINETUNE, OwnDatasetRequest(root, val_split=0.5),
                                     str(tmp_path / 'work'))
    cfg = Config.fromfile(made.finetune)
    assert cfg.test_evaluator.ann_file == str(tmp_path / 'work' / 'val_split' / 'val.json')
    assert cfg.train_dataloader.dataset.ann_file == str(tmp_path / 'work' / 'val_split' / 'train.json')


# --- the schedule --------------------------------------------------------------------------------

def _schedule_cfg(**train_cfg):
    return Config(dict(
        train_dataloader=dict(batch_size=2, dataset=dict(type='RepeatDataset', times=4, dataset=dict(ann_file='x'))),
        train_cfg=dict(type='EpochBasedTrainLoop', **train_cfg),
        param_scheduler=[dict(type='LinearLR', start_factor=0.001, by_epoch=False, begin=0, end=500),
                         dict(type='MultiStepLR', begin=0, end=12, by_epoch=True, milestones=[8, 11])]))


def test_warmup_capped_to_a_share_of_the_run_and_passes_kept():
    cfg = _schedule_cfg(max_epochs=12)
    schedule = size_schedule(cfg, num_images=100, world_size=1, accumulate=1)
    assert schedule.total_steps == 12 * 200  # 12 epochs x 4 repeats x 100 images / batch 2
    assert cfg.param_scheduler[0].end == int(WARMUP_MAX_SHARE * 2400)
    assert cfg.param_scheduler[1].milestones == [8, 11] and cfg.train_cfg.max_epochs == 12
    # 2 processes x accumulate 2: a quarter of the optimizer steps, the warmup with them
    cfg = _schedule_cfg(max_epochs=12)
    assert size_schedule(cfg, 100, world_size=2, accumulate=2).total_steps == 600
    assert cfg.param_scheduler[0].end == 60
    # a large set keeps the recipe's warmup
    cfg = _schedule_cfg(max_epochs=12)
    assert size_schedule(cfg, 100000, 8).changed == {} and cfg.param_scheduler[0].end == 500


def test_milestones_scale_with_the_stage_length():
    cfg = _schedule_cfg(max_epochs=24)
    size_schedule(cfg, 1000)
    assert cfg.param_scheduler[1].milestones == [16, 22] and cfg.param_scheduler[1].end == 24


def test_iteration_schedule_becomes_the_same_passes_over_this_dataset():
    cfg = Config(dict(
        train_dataloader=dict(batch_size=2, dataset=dict(ann_file='mine.json')),
        train_cfg=dict(type='IterBasedTrainLoop', max_iters=90000, val_interval=10000),
        auto_scale_lr=dict(base_batch_size=16),
        default_hooks=dict(checkpoint=dict(by_epoch=False, interval=10000)),
        param_scheduler=[dict(type='LinearLR', by_epoch=False, begin=0, end=500),
                         dict(type='MultiStepLR', begin=0, end=90000, by_epoch=False, milestones=[60000, 80000])]))
    schedule = size_schedule(cfg, num_images=570, world_size=1, recipe_images=57000)
    # 90000 x 16 / 57000 = 25.3 passes; over 570 images at 2 a step: 7200 steps
    assert cfg.train_cfg.max_iters == schedule.total_steps == 7200
    assert cfg.param_scheduler[1].milestones == [4800, 6400] and cfg.param_scheduler[1].end == 7200
    assert cfg.param_scheduler[0].end == 500 and cfg.train_cfg.val_interval == 800
    assert cfg.default_hooks.checkpoint.interval == 800


# --- the overlay ---------------------------------------------------------------------------------

def test_overlay_writes_a_list_whole_and_variables_by_name(tmp_path):
    base = tmp_path / 'base.py'
    base.write_text("heads = None\nmodel = dict(head=[dict(type='A', n=80), dict(type='B', n=80)], other=1)\n"
                    "data = dict(root='x/', sub=dict(keep=1, img='a/'))\n")
    cfg = Config.fromfile(str(base))
    for head in cfg.model.head:
        head.n = 3
    cfg.data.sub.img = 'b/'
    text = render_overlay(str(base), ['header'], [('root', '/d/', 'the folder')],
                          [Setting('model.head.0.n', 'three'), Setting('model.head.1.n', 'three'),
                           Setting('data.root', '', Ref('root')), Setting('data.sub.img', 'images')], cfg)
    assert text.startswith('# header\n')
    child = tmp_path / 'child.py'
    child.write_text(text)
    loaded = Config.fromfile(str(child))
    assert [h.n for h in loaded.model.head] == [3, 3] and [h.type for h in loaded.model.head] == ['A', 'B']
    assert loaded.model.other == 1 and loaded.data.root == '/d/' and loaded.data.sub == dict(keep=1, img='b/')
    assert 'root=root,' in text and 'a child config cannot change one element' in text


def test_generated_pair_is_a_thin_delta_of_the_toy_pair(tmp_path):
    root = str(tmp_path / 'data')
    write_own_dataset(root)
    made = write_own_dataset_configs(TOY_PRETRAIN, TOY_FINETUNE, OwnDatasetRequest(root), str(tmp_path / 'work'))
    assert osp.basename(made.pretrain) == 'mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_data.py'
    text = open(made.finetune, encoding='utf-8').read()
    assert "classes=('solder joint', 'scratch', 'fissure légère')" in text and len(text.splitlines()) < 120
    pre, ft = Config.fromfile(made.pretrain), Config.fromfile(made.finetune)
    assert ft.pretrain_config == made.pretrain
    assert ft.load_from == str(tmp_path / 'work' / 'mask-rcnn_r18_fpn_1xb8-direct-pretrain-192_data' / 'epoch_4.pth')
    assert pre.train_dataloader.dataset.times == 2 and pre.train_cfg.max_epochs == 4  # the pair's passes kept
    for cfg in (pre, ft):
        assert cfg.auto_scale_lr.enable is True
        assert cfg.model.roi_head.bbox_head.num_classes == cfg.model.roi_head.mask_head.num_classes == 3
        assert cfg.test_evaluator.ann_file == osp.join(root, 'annotations/val.json')
        assert cfg.test_evaluator.classwise is True
    assert any(line.startswith('LR scaled to the batch') for line in made.summary)


def test_every_box_keeps_its_name_when_the_file_lists_categories_out_of_id_order(tmp_path):
    """The issue's mislabel: with categories listed 11, 3, 7, a classes tuple in id order would
    train 'fissure légère' boxes as 'solder joint'. Built from the generated config, every
    instance's label names its own category."""
    from mmdet.registry import DATASETS
    root = str(tmp_path / 'data')
    files = write_own_dataset(root, categories=[CATEGORIES[2], CATEGORIES[0], CATEGORIES[1]],
                              train_objects=[[3], [7, 11], [11], [3, 7]])
    made = write_own_dataset_configs(TOY_PRETRAIN, TOY_FINETUNE, OwnDatasetRequest(root), str(tmp_path / 'work'))
    dataset = DATASETS.build(Config.fromfile(made.finetune).train_dataloader.dataset)
    coco = _load(files['train_ann'])
    name_of = {c['id']: c['name'] for c in coco['categories']}
    classes = dataset.metainfo['classes']
    for info in dataset.data_list:
        in_file = sorted(name_of[a['category_id']] for a in coco['annotations'] if a['image_id'] == info['img_id'])
        assert sorted(classes[inst['bbox_label']] for inst in info['instances']) == in_file


def test_options_are_written_into_the_stage_they_belong_to(tmp_path):
    root = str(tmp_path / 'data')
    write_own_dataset(root)
    request = OwnDatasetRequest(root, cfg_options={'train_cfg.max_epochs': 6},
                                finetune_cfg_options={'optim_wrapper.optimizer.lr': 0.005}, auto_scale_lr=False)
    made = write_own_dataset_configs(TOY_PRETRAIN, TOY_FINETUNE, request, str(tmp_path / 'work'))
    pre, ft = Config.fromfile(made.pretrain), Config.fromfile(made.finetune)
    assert pre.train_cfg.max_epochs == ft.train_cfg.max_epochs == 6
    assert ft.optim_wrapper.optimizer.lr == 0.005 and pre.optim_wrapper.optimizer.lr == 0.02
    assert ft.param_scheduler[1].milestones == [3] and pre.auto_scale_lr.enable is False  # 1/2 of 2 -> 3 of 6
    with pytest.raises(ConfigInputError, match='takes a number'):
        write_own_dataset_configs(TOY_PRETRAIN, TOY_FINETUNE,
                                  OwnDatasetRequest(root, cfg_options={'train_cfg.max_epochs': 'six'}),
                                  str(tmp_path / 'bad'))


def test_arch_names_pick_the_zoo_pairs():
    pre, ft = arch_pair('cascade')
    assert osp.basename(pre) == 'cascade-rcnn_r50_fpn_syncbn_8xb8-direct-pretrain-448-p1x_coco.py'
    assert osp.basename(ft) == 'cascade-rcnn_r50_fpn_8xb2-direct-finetune-p1x-1x_coco.py'
    with pytest.raises(ConfigInputError, match='choose one of retinanet, faster'):
        arch_pair('yolo')
