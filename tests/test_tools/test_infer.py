"""tools/infer.py: drawn images and one predictions JSON for a folder, bad files skipped.

The checkpoint is the toy finetune model at random init with the toy class names in its
meta (what matters here is the tool, not the detector's quality; a score threshold of 0
keeps every detection so masks are present)."""
import json
import os.path as osp
import shutil

import pytest
from dp_test_utils import TOOLS, TOY_FINETUNE
from forked_cli import run_tool

pytestmark = pytest.mark.slow  # the inference tool on a full toy detector


@pytest.fixture(scope='module')
def checkpoint(toy_model_checkpoint):
    """The toy finetune model at random init (seed 0), class names in its meta (conftest)."""
    return toy_model_checkpoint


@pytest.fixture()
def image_dir(tmp_path, tiny_coco_root):
    folder = tmp_path / 'images'
    folder.mkdir()
    for name in ('val_00000.jpg', 'val_00001.jpg'):
        shutil.copy(osp.join(tiny_coco_root, 'val', name), folder / name)
    (folder / 'notes.txt').write_text('not an image\n')
    (folder / 'broken.jpg').write_bytes(b'not a jpeg')
    (folder / 'subfolder').mkdir()
    return folder


def test_infer_draws_each_image_and_writes_one_json(checkpoint, image_dir, tmp_path):
    from pycocotools import mask as mask_utils
    out = tmp_path / 'out'
    proc = run_tool(osp.join(TOOLS, 'infer.py'), TOY_FINETUNE, checkpoint, str(image_dir), '--out-dir', str(out),
                    '--score-thr', '0.0', '--device', 'cpu', cwd=str(tmp_path), check=False)
    log = proc.stdout + proc.stderr
    assert proc.returncode == 0, log[-4000:]
    assert f'skipping {image_dir / "notes.txt"}: not an image' in log
    assert f'skipping {image_dir / "broken.jpg"}: cannot be decoded' in log
    assert sorted(p.name for p in (out / 'vis').iterdir()) == ['val_00000.jpg', 'val_00001.jpg']
    with open(out / 'predictions.json') as f:
        predictions = json.load(f)
    assert predictions['classes'] == ['circle', 'rectangle', 'triangle', 'star']
    assert set(predictions['skipped']) == {'notes.txt', 'broken.jpg'}
    assert [image['file'] for image in predictions['images']] == ['val_00000.jpg', 'val_00001.jpg']
    import mmcv
    for image in predictions['images']:
        drawn = mmcv.imread(str(out / 'vis' / image['file']))
        assert drawn.shape[:2] == (image['height'], image['width'])
        assert image['instances'], 'score threshold 0 keeps every detection'
        for instance in image['instances']:
            assert 0 <= instance['label'] < 4 and instance['class'] == predictions['classes'][instance['label']]
            assert 0.0 <= instance['score'] <= 1.0
            x1, y1, x2, y2 = instance['bbox']
            assert x2 >= x1 and y2 >= y1
            rle = dict(size=instance['mask']['size'], counts=instance['mask']['counts'].encode())
            assert mask_utils.decode(rle).shape == (image['height'], image['width'])
        scores = [i['score'] for i in image['instances']]
        assert scores == sorted(scores, reverse=True)


def test_score_threshold_filters_the_json(checkpoint, image_dir, tmp_path):
    from direct_pretrain.apis.inference import infer_images
    low = infer_images(TOY_FINETUNE, checkpoint, str(image_dir), str(tmp_path / 'low'), score_thr=0.0, device='cpu')
    high = infer_images(TOY_FINETUNE, checkpoint, str(image_dir), str(tmp_path / 'high'), score_thr=0.25,
                        device='cpu')
    with open(high.predictions_file) as f:
        kept = [i['score'] for image in json.load(f)['images'] for i in image['instances']]
    assert all(s >= 0.25 for s in kept)
    assert sum(high.num_instances.values()) < sum(low.num_instances.values())


@pytest.mark.parametrize('which, message', [
    ('config', "config file '{}' does not exist"),
    ('checkpoint', "checkpoint '{}' does not exist"),
    ('image_dir', "image folder '{}' does not exist"),
])
def test_missing_inputs_are_clear_errors(checkpoint, image_dir, tmp_path, which, message):
    from direct_pretrain.apis.inference import infer_images
    from direct_pretrain.errors import InferenceInputError
    args = dict(config=TOY_FINETUNE, checkpoint=checkpoint, image_dir=str(image_dir))
    args[which] = str(tmp_path / 'missing')
    with pytest.raises(InferenceInputError, match=message.format(args[which])):
        infer_images(out_dir=str(tmp_path / 'out'), **args)
    assert not (tmp_path / 'out').exists()


def test_missing_image_dir_exits_non_zero(checkpoint, tmp_path):
    proc = run_tool(osp.join(TOOLS, 'infer.py'), TOY_FINETUNE, checkpoint, str(tmp_path / 'none'), '--out-dir',
                    str(tmp_path / 'out'), cwd=str(tmp_path), check=False)
    assert proc.returncode == 2
    assert proc.stderr.startswith('error: image folder') and 'Traceback' not in proc.stderr


def test_a_folder_without_images_is_an_error(checkpoint, tmp_path):
    from direct_pretrain.apis.inference import infer_images
    from direct_pretrain.errors import InferenceInputError
    (tmp_path / 'docs').mkdir()
    (tmp_path / 'docs' / 'notes.txt').write_text('x')
    with pytest.raises(InferenceInputError, match=r'no image to infer .* \(1 file\(s\) skipped'):
        infer_images(TOY_FINETUNE, checkpoint, str(tmp_path / 'docs'), str(tmp_path / 'out'))


# Non-contiguous ids in the file's order (the order mmdet labels them), names = the toy classes.
FILE_CATEGORIES = [dict(id=3, name='circle'), dict(id=7, name='rectangle'), dict(id=11, name='triangle'),
                   dict(id=20, name='star')]


def test_predictions_carry_the_files_category_ids(checkpoint, image_dir, tmp_path):
    """Label i -> the file's i-th category id (what mmdet trained and CocoMetric writes), read from
    the config's test annotation file, next to the class name from the checkpoint."""
    from direct_pretrain.apis.inference import infer_images
    data = tmp_path / 'own_data'
    (data / 'annotations').mkdir(parents=True)
    (data / 'val').mkdir()
    ann_file = data / 'annotations' / 'val.json'
    ann_file.write_text(json.dumps(dict(images=[], annotations=[], categories=FILE_CATEGORIES)))
    config = tmp_path / 'own_finetune.py'
    config.write_text(f'_base_ = {TOY_FINETUNE!r}\n'
                      f"test_dataloader = dict(dataset=dict(data_root={str(data) + '/'!r}, "
                      "ann_file='annotations/val.json'))\n")
    result = infer_images(str(config), checkpoint, str(image_dir), str(tmp_path / 'out'), score_thr=0.0,
                          device='cpu')
    with open(result.predictions_file) as f:
        predictions = json.load(f)
    assert predictions['category_ids'] == [3, 7, 11, 20]
    assert predictions['category_ids_from'] == str(ann_file)
    id_of = {c['name']: c['id'] for c in FILE_CATEGORIES}
    instances = [i for image in predictions['images'] for i in image['instances']]
    assert instances and {i['category_id'] for i in instances} <= {3, 7, 11, 20}
    for instance in instances:
        assert instance['category_id'] == id_of[instance['class']] == FILE_CATEGORIES[instance['label']]['id']


def test_keypoint_predictions_carry_each_keypoint(tmp_path, image_dir):
    """Keypoint R-CNN: every instance lists [x, y, score] per keypoint, named in the header."""
    import torch
    from keypoint_test_utils import TOY_KP_FINETUNE
    from mmengine.config import Config

    from mmdet.registry import MODELS
    from direct_pretrain.apis.inference import infer_images
    cfg = Config.fromfile(TOY_KP_FINETUNE)
    torch.manual_seed(0)
    path = str(tmp_path / 'kp_random.pth')
    torch.save({'state_dict': MODELS.build(cfg.model).state_dict(), 'meta': {'dataset_meta': dict(cfg.metainfo)}}, path)
    result = infer_images(TOY_KP_FINETUNE, path, str(image_dir), str(tmp_path / 'out'), score_thr=0.0, device='cpu')
    with open(result.predictions_file) as f:
        predictions = json.load(f)
    names = list(cfg.metainfo.keypoint_names)
    assert predictions['keypoint_names'] == names and 'pixel indices' in predictions['keypoint_format']
    instances = [i for image in predictions['images'] for i in image['instances']]
    assert instances
    for instance in instances:
        assert len(instance['keypoints']) == len(names)
        x1, y1, x2, y2 = instance['bbox']
        for x, y, score in instance['keypoints']:
            # decoded inside the box (COCO's pixel-index frame: the box's continuous frame minus 0.5)
            assert x1 - 0.5 - 1e-3 <= x <= x2 - 0.5 + 1e-3 and y1 - 0.5 - 1e-3 <= y <= y2 - 0.5 + 1e-3
            assert isinstance(score, float)
