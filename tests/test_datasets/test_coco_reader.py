"""The streaming reader gives the dataset check exactly what ``json`` + the Python tests give,
on adversarial files, with blocks small enough that items straddle them; it falls back to
``json`` where the layout is not the common one; and the check never ``json.load``s a
training file a second time."""
import json
import math
import random

import numpy as np
import pytest

from direct_pretrain.datasets import coco_reader
from direct_pretrain.datasets.coco_reader import read_coco_categories, read_coco_columns

# values the fields take in the wild and in broken files (bool/None/str/containers included)
NUMBERS = [0, 1, -1, 7, 12.5, -0.0, 0.0, 1e-05, 2e+3, 3.25e-7, 702.1057499999998, 1234567.8912345678, 0.1 + 0.2,
           1e300, 123456789012345678, math.nan, math.inf, -math.inf, 99.99, 640, 0.5]
ODD = [True, False, None, '', 'x', [], [1], {}, {'a': 1}]
SEGMENTATIONS = [
    [[1, 2, 3, 4, 5, 6]], [[1, 2, 3, 4]], [[1, 2, 3, 4, 5]], [[1.5, 2, 3, 4, 5, 6, 7, 8], [1, 2]], [1, 2, 3, 4, 5, 6],
    [], [[]], [[1, 2, 3, 4, 5, 6, 7]], [[[1, 2], [3, 4], [5, 6]]], [['1', '2', '3', '4', '5', '6']], [[1, 2, 3], 5],
    {'counts': [1, 2, 3], 'size': [4, 5]}, {'counts': 'abc', 'size': [4, 5]}, {'counts': None, 'size': [4, 5]},
    {'counts': 3, 'size': [4, 5]}, {'counts': [1], 'size': None}, {'size': [1, 2]}, {}, {'counts': [[1]], 'size': 1},
    'polygon', 0, 1, None, True, math.nan,
]


def _annotation(rng: random.Random, ann_id: int, image_ids: list, odd: float) -> dict:
    def pick(common, rare):
        return rng.choice(rare) if rng.random() < odd else common
    x, y = rng.uniform(-20, 600), rng.uniform(-20, 400)
    bbox = [round(x, rng.choice([0, 2, 5, 13])), round(y, 2), round(rng.uniform(0, 90), 2), rng.uniform(0, 90)]
    if rng.random() < odd:
        bbox[rng.randrange(4)] = rng.choice(NUMBERS + ODD)
    ann = dict(id=ann_id, image_id=pick(rng.choice(image_ids), [10**6, -3]),
               category_id=pick(rng.choice([1, 3, 7]), [99, -1, 0]),
               bbox=pick(bbox, [bbox[:3], bbox + [1], [], 'box', None, [bbox], {'x': 1}]),
               area=pick(rng.uniform(1, 9000), NUMBERS + ODD), iscrowd=pick(rng.choice([0, 0, 1]), NUMBERS + ODD),
               segmentation=pick(SEGMENTATIONS[0], SEGMENTATIONS))
    if rng.random() < 0.3:
        ann['ignore'] = pick(rng.choice([0, 1]), NUMBERS + ODD)
    if rng.random() < 0.3:  # what exporters add: nested objects, brackets and keys inside strings
        ann['attributes'] = {'occluded': False, 'note': 'a "bbox": [1, 2] {}', 'list': [[1, {'id': 5}]]}
    if rng.random() < odd:
        for key in ('bbox', 'area', 'iscrowd', 'segmentation', 'category_id'):
            if rng.random() < 0.2:
                ann.pop(key, None)
    items = list(ann.items())
    rng.shuffle(items)
    return dict(items)


def coco_file(path, seed: int, odd: float = 0.3, indent=None, separators=None, images: int = 30) -> dict:
    rng = random.Random(seed)
    image_ids = rng.sample(range(1, 10**6), images)
    data = {
        'info': {'description': 'adversarial [{"images": []}]'},
        'images': [dict(id=i, file_name=rng.choice([f'{i:012d}.jpg', f'dir\\{i}.jpg', f'ü "q" {i}.png', f'{i}/x.jpg']),
                        width=rng.choice([640, 480.0, 0, None, '640', True, math.nan, 1e4]) if rng.random() < odd
                        else 640, height=480, extra={'k': [1, 2]}) for i in image_ids],
        'annotations': [_annotation(rng, n + 1, image_ids, odd) for n in range(rng.randrange(20, 200))],
        'categories': [dict(id=i, name=name) for i, name in ((3, 'solder joint'), (1, 'scratch'), (7, 'Lötstelle'))],
    }
    keys = list(data)
    rng.shuffle(keys)
    with open(path, 'w') as f:
        json.dump({k: data[k] for k in keys}, f, indent=indent, separators=separators, ensure_ascii=rng.random() < .5)
    return data


def assert_same(a, b):
    for name in a.__dataclass_fields__:
        if name == 'method':
            continue
        x, y = getattr(a, name), getattr(b, name)
        if isinstance(x, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape, name
            same = np.array_equal(x, y, equal_nan=True) if x.dtype.kind == 'f' else np.array_equal(x, y)
            if name == 'area':  # read to within 2 ulp past 16 digits: its sign and finiteness are what counts
                same = np.allclose(x, y, rtol=5e-16, atol=0, equal_nan=True) and \
                    np.array_equal(np.sign(x), np.sign(y), equal_nan=True) and np.array_equal(x == 0, y == 0)
            assert same, (name, x, y)
        else:
            assert x == y, name


@pytest.fixture(params=[256, 4096, 1 << 20])
def small_blocks(request, monkeypatch):
    monkeypatch.setattr(coco_reader, '_BLOCK', request.param)
    return request.param


@pytest.mark.parametrize('seed', range(6))
@pytest.mark.parametrize('layout', [dict(), dict(indent=2), dict(separators=(',', ':'))])
def test_stream_equals_json_on_adversarial_files(tmp_path, small_blocks, seed, layout):
    path = str(tmp_path / 'a.json')
    coco_file(path, seed, **layout)
    stream = read_coco_columns(path)
    assert stream.method == 'stream'  # none of these needs the json path
    assert_same(stream, read_coco_columns(path, stream=False))


@pytest.mark.parametrize('edit, reason', [
    (lambda d: d['annotations'][3].update(id='a7'), 'string id'),
    (lambda d: d['annotations'][3].update(image_id=5.0), 'float image_id'),
    (lambda d: d['annotations'][3].update(category_id=None), 'null category'),
    (lambda d: d['annotations'][3].pop('id'), 'no id'),
    (lambda d: d['images'][2].update(id=True), 'bool image id'),
    (lambda d: d.update(annotations=None), 'annotations null'),
    (lambda d: d['images'][1].update(file_name=5), 'file_name not a string'),
])
def test_unusual_layouts_fall_back_to_json_with_the_same_result(tmp_path, edit, reason):
    path = tmp_path / 'a.json'
    data = coco_file(str(path), 3, odd=0.1)
    edit(data)
    path.write_text(json.dumps(data))
    assert read_coco_columns(str(path)).method == 'json', reason


def test_repeated_keys_fall_back(tmp_path):
    path = tmp_path / 'a.json'
    coco_file(str(path), 4, odd=0.0)
    text = path.read_text().replace('"iscrowd": ', '"iscrowd": 1, "iscrowd": ', 1)
    path.write_text(text)
    columns = read_coco_columns(str(path))
    assert columns.method == 'json' and columns.iscrowd.any()


@pytest.mark.parametrize('cut', [0.3, 0.9, 0.999])
def test_truncated_file_is_not_readable_json(tmp_path, cut):
    path = tmp_path / 'a.json'
    coco_file(str(path), 5)
    data = path.read_bytes()
    path.write_bytes(data[:int(len(data) * cut)])
    with pytest.raises(coco_reader.DatasetValidationError, match='is not readable JSON'):
        read_coco_columns(str(path))


def test_categories_only_from_the_tail_of_a_big_file(tmp_path, monkeypatch):
    """val/test files: the categories are read from the last MiB when they end the file, and
    through the structure alone otherwise - never by parsing the annotations."""
    path = tmp_path / 'a.json'
    data = coco_file(str(path), 6, odd=0.0, images=400)
    monkeypatch.setattr(coco_reader, '_SMALL_FILE', 1000)
    monkeypatch.setattr(coco_reader, '_TAIL', 4000)
    calls = []
    monkeypatch.setattr(coco_reader, '_read_json', lambda *a: calls.append(a))
    monkeypatch.setattr(coco_reader, '_read_items', lambda *a: calls.append(a))
    ordered = {k: data[k] for k in ('images', 'annotations', 'categories')}
    for first in (False, True):  # categories last (the tail) or first (the structure scan)
        keys = ['categories', 'images', 'annotations'] if first else list(ordered)
        path.write_text(json.dumps({k: ordered[k] for k in keys}))
        assert read_coco_categories(str(path)) == data['categories']
    assert not calls


def test_the_check_reads_the_training_file_once_and_never_whole(tmp_path, monkeypatch):
    """No second json.load of what mmdet parses: the check's only read of the file is the
    streaming reader's blocks (no json call sees more than a category list or a file name)."""
    from direct_pretrain.datasets.coco_validation import validate_coco_dataset
    path = tmp_path / 'a.json'
    coco_file(str(path), 7, odd=0.0, images=300)
    size = path.stat().st_size
    seen = []
    real_loads = json.loads
    monkeypatch.setattr(coco_reader.json, 'loads', lambda text, *a, **k: seen.append(len(text)) or
                        real_loads(text, *a, **k))
    monkeypatch.setattr(coco_reader, '_BLOCK', 8192)
    report = validate_coco_dataset(str(path), str(tmp_path), check_files=False)
    assert report.num_images == 300
    assert seen and max(seen) < size / 20
