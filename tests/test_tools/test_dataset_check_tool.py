"""The dataset check through the real train tool (forked, see tests/forked_cli.py).

Classes typed in another order than the file's categories, or no metainfo on a file that is
not COCO's, used to pass every check and train boxes under the wrong names; duplicate ids
and image files that are not the size the annotation file says used to pass too. Each is now
one ``error:`` line naming the key or the ids and the fix, exit code 2, no work dir. And what
the check says will be skipped is skipped: a real training run with ``--check-images full``
skips, counts and lists exactly the files the check named.
"""
import json
import os.path as osp
import shutil
import struct
import zlib

import cv2
import numpy as np
import pytest
from dp_test_utils import write_tiny_stage_configs
from forked_cli import ToolRun, run_tools

pytestmark = pytest.mark.slow  # tool runs

#: the user's categories: non-contiguous ids, a space, non-ASCII, listed in id order
CATEGORIES = [(3, 'solder joint'), (7, 'scratch'), (11, 'Lötstelle'), (20, 'pad')]
FILE_ORDER = tuple(name for _, name in CATEGORIES)
PALETTE = [(220, 20, 60), (0, 0, 142), (0, 60, 100), (250, 170, 30)]


@pytest.fixture(scope='module')
def user_data(tmp_path_factory, tiny_coco_root):
    """The toy set with the user's categories (toy category i becomes CATEGORIES[i - 1])."""
    root = tmp_path_factory.mktemp('user_set') / 'data'
    shutil.copytree(tiny_coco_root, root)
    for split in ('train', 'val'):
        path = root / 'annotations' / f'instances_{split}.json'
        data = json.loads(path.read_text())
        new_id = {old['id']: CATEGORIES[i][0] for i, old in enumerate(data['categories'])}
        data['categories'] = [dict(id=i, name=n, supercategory='defect') for i, n in CATEGORIES]
        for ann in data['annotations']:
            ann['category_id'] = new_id[ann['category_id']]
        path.write_text(json.dumps(data, ensure_ascii=False))
    return str(root)


def _metainfo(classes) -> str:
    return f'dict(classes={tuple(classes)!r}, palette={PALETTE!r})'


def _config(folder, data_root, train_classes=FILE_ORDER, test_classes=FILE_ORDER, extra=''):
    """The tiny pretrain config on ``data_root`` with these classes (None: no metainfo)."""
    pre, _ = write_tiny_stage_configs(folder, data_root)
    train = 'None' if train_classes is None else _metainfo(train_classes)
    with open(pre, 'a') as f:
        f.write(f"train_dataloader['dataset']['dataset']['metainfo'] = {train}\n"
                f"test_dataloader['dataset']['metainfo'] = {_metainfo(test_classes)}\n"
                'model = dict(roi_head=dict(bbox_head=dict(num_classes=4), mask_head=dict(num_classes=4)))\n' + extra)
    return pre


def _copy_data(user_data, folder):
    data = osp.join(folder, 'data')
    shutil.copytree(user_data, data)
    return data


def test_lying_datasets_and_wrong_classes_stop_with_one_line(tmp_path, user_data):
    root = str(tmp_path)
    ann_train = osp.join(user_data, 'annotations', 'instances_train.json')
    ann_val = osp.join(user_data, 'annotations', 'instances_val.json')
    wrong = ('scratch', 'solder joint', 'Lötstelle', 'pad')
    cases = []

    def case(name, expected, config_path, ok=False):
        work_dir = osp.join(root, name, 'wd')
        run = ToolRun('train', [config_path, '--work-dir', work_dir, '--check-only'], osp.join(root, name))
        cases.append((run, expected, work_dir, ok))

    case('right', [], _config(osp.join(root, 'right'), user_data), ok=True)
    key = 'train_dataloader.dataset.dataset.metainfo.classes'
    case('order', [key, ann_train, f'config {wrong!r}', f'file {FILE_ORDER!r}',
                   f'Fix: train_dataloader.dataset.dataset.metainfo=dict(classes={FILE_ORDER!r})',
                   "'solder joint'=3, 'scratch'=7"],
         _config(osp.join(root, 'order'), user_data, train_classes=wrong, test_classes=wrong))  # consistent, wrong
    case('test_order', ['test_dataloader.dataset.metainfo.classes', ann_val, f'config {wrong!r}'],
         _config(osp.join(root, 'test_order'), user_data, test_classes=wrong))
    case('no_metainfo', ['train_dataloader.dataset.dataset.metainfo.classes is not set', ann_train,
                         'need at least one array to concatenate',
                         f'set train_dataloader.dataset.dataset.metainfo=dict(classes={FILE_ORDER!r})'],
         _config(osp.join(root, 'no_metainfo'), user_data, train_classes=None))
    case('absent', ["names ['Lötstele']", 'e.g. train_dataloader.dataset.dataset.metainfo=dict(classes='],
         _config(osp.join(root, 'absent'), user_data, train_classes=('solder joint', 'scratch', 'Lötstele', 'pad')))

    data = _copy_data(user_data, osp.join(root, 'duplicates'))
    path = osp.join(data, 'annotations', 'instances_train.json')
    coco = json.load(open(path))
    coco['annotations'][2]['id'] = coco['annotations'][0]['id']
    coco['images'][3]['id'] = coco['images'][1]['id']
    json.dump(coco, open(path, 'w'))
    case('duplicates', [f'annotation id(s) used more than once, e.g. ids [{coco["annotations"][0]["id"]}]',
                        f'image id(s) given to more than one image entry, e.g. ids [{coco["images"][1]["id"]}]'],
         _config(osp.join(root, 'duplicates'), data))

    data = _copy_data(user_data, osp.join(root, 'sizes'))
    image = coco['images'][0]
    cv2.imwrite(osp.join(data, 'train', image['file_name']), np.zeros((20, 30, 3), np.uint8))
    case('sizes', [osp.join(data, 'train', image['file_name']),
                   f'the file is 30x20 but the annotation file says {image["width"]}x{image["height"]}',
                   'more than dataset_check.max_bad_images=0'],
         _config(osp.join(root, 'sizes'), data, extra='dataset_check = dict(max_bad_images=0)\n'))

    run_tools([run for run, *_ in cases])
    for run, expected, work_dir, ok in cases:
        context = f'{run.args[0]}\n{run.stderr[-3000:]}'
        assert not osp.exists(work_dir), context
        if ok:
            assert run.returncode == 0, context
            continue
        assert run.returncode == 2 and len(run.error_lines) == 1 and 'Traceback' not in run.stderr, context
        for text in expected:
            assert text in run.error_lines[0], (text, context)


def _png_with_broken_ancillary_crc(img: np.ndarray) -> bytes:
    """A PNG OpenCV decodes (libpng only warns about an ancillary chunk's CRC) but Pillow's
    structure check (--check-images full) rejects."""
    png = cv2.imencode('.png', img)[1].tobytes()
    body = b'tEXt' + b'Comment\x00hello'
    return png[:33] + struct.pack('>I', len(body) - 4) + body + struct.pack('>I', zlib.crc32(body) ^ 1) + png[33:]


def test_what_the_check_says_is_skipped_is_skipped(tmp_path, user_data):
    """Issue 21: with --check-images full the log said a file 'will be skipped', then '0 bad
    image(s) skipped'; a file of the wrong size was not noticed at all."""
    data = _copy_data(user_data, str(tmp_path))
    coco = json.load(open(osp.join(data, 'annotations', 'instances_train.json')))
    crc, small = coco['images'][0], coco['images'][1]
    crc_path, small_path = (osp.join(data, 'train', im['file_name']) for im in (crc, small))
    original = cv2.imread(crc_path)
    with open(crc_path, 'wb') as f:  # the right size, a PNG behind the .jpg name: decoders go by content
        f.write(_png_with_broken_ancillary_crc(original))
    cv2.imwrite(small_path, cv2.resize(cv2.imread(small_path), (small['width'] // 2, small['height'] // 2)))
    config = _config(str(tmp_path / 'cfg'), data)
    work_dir = str(tmp_path / 'wd')
    run, = run_tools([ToolRun('train', [config, '--work-dir', work_dir, '--check-images', 'full', '--cfg-options',
                                        'train_dataloader.batch_size=4'], str(tmp_path))])
    assert run.returncode == 0, run.describe()
    warned = next(line for line in run.stderr.splitlines() if 'will be skipped during training' in line)
    assert '2 bad image file(s) will be skipped' in warned and crc_path in warned and small_path in warned
    skipped = {}
    for line in open(osp.join(work_dir, 'bad_images.jsonl')):
        entry = json.loads(line)
        skipped.setdefault(entry['path'], entry['reason'])
    assert set(skipped) == {crc_path, small_path}
    assert skipped[crc_path].startswith('header cannot be decoded') and f'{crc_path} ({skipped[crc_path]}' in warned
    assert 'but the annotation file says' in skipped[small_path]
    output = (run.stdout + run.stderr).splitlines()
    epoch_line = next(line for line in output if 'Epoch 1: ' in line and 'bad image(s) skipped' in line)
    assert int(epoch_line.split('Epoch 1: ')[1].split(' ')[0]) >= 2


def test_a_resume_does_not_check_the_unchanged_dataset_again(tmp_path, tiny_trained_stage):
    """The training run recorded its passed check in its work dir; a ``--resume`` of the same
    config on the same file skips it, and a changed setting the check reads checks again."""
    work_dir = str(tmp_path / 'work')
    shutil.copytree(tiny_trained_stage['work_dir'], work_dir)
    assert osp.isfile(osp.join(work_dir, 'dataset_check.json'))
    args = [tiny_trained_stage['config'], '--work-dir', work_dir, '--resume', '--check-only',
            '--cfg-options', 'train_dataloader.batch_size=4']
    same, changed = run_tools([ToolRun('train', args, str(tmp_path / 'same')),
                               ToolRun('train', args + ['dataset_check.min_usable_share=0.4'],
                                       str(tmp_path / 'changed'))])
    assert same.returncode == 0 and changed.returncode == 0, same.stderr[-2000:] + changed.stderr[-2000:]
    assert 'not checked again' in same.stderr
    assert 'not checked again' not in changed.stderr and 'dataset check:' in changed.stderr
