"""Time and memory of the dataset check next to mmdet's own ``CocoDataset`` initialisation.

    python tools/benchmark_dataset_check.py                  # COCO train2017 size: 118,287 images
    python tools/benchmark_dataset_check.py --images 5000    # a smaller run
    python tools/benchmark_dataset_check.py --ann-file big.json --keep   # write once, reuse

Why: the check reads every annotation of the training file before anything is written; on
COCO it must cost a small fraction of what mmdet itself spends on the same file (the target
is 10%, time and peak memory), since every job pays both. The synthetic file has COCO's
shape: 80 categories with COCO's non-contiguous ids, about 7.3 annotations per image (1% of
the images without any), polygons of 6-32 points (sometimes two), 1% crowd annotations with
uncompressed RLE counts, COCO's image fields and key order.

Each figure comes from its own fresh process: the time of the measured call alone (imports
excluded) and the peak resident memory, both in total and above the process's memory after
its imports (``resource.getrusage(RUSAGE_SELF).ru_maxrss`` against ``/proc/self/statm``).
Every measurement runs ``--repeat`` times (fresh processes, interleaved); the best and the
median time are printed, since a shared machine slows single runs at random.
Measured: the full check (annotations, classes, filter_cfg, a mask-loading pipeline; image
files not checked: the synthetic set has none), a repeated check answered by the cache of a
work dir, the class check of a validation/test file (categories only), and
``CocoDataset(...)`` with the same filter_cfg.
"""
import argparse
import json
import os
import os.path as osp
import subprocess
import sys
import tempfile
import time

import numpy as np

#: COCO's 80 category ids (1..90 with gaps) and names, in the file's order.
COCO_CATEGORY_IDS = (1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28,
                     31, 32, 33, 34, 35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55,
                     56, 57, 58, 59, 60, 61, 62, 63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84,
                     85, 86, 87, 88, 89, 90)
COCO_IMAGES = 118287
ANNOTATIONS_PER_IMAGE = 860001 / COCO_IMAGES


def _coco_names():
    from mmdet.datasets import CocoDataset
    return CocoDataset.METAINFO['classes']


def write_synthetic_coco(path: str, num_images: int, seed: int = 0) -> dict:
    """Write a COCO-shaped instances file with ``num_images`` images; returns counts."""
    rng = np.random.default_rng(seed)
    names = _coco_names()
    counts = rng.poisson(ANNOTATIONS_PER_IMAGE / 0.99, num_images)
    counts[rng.random(num_images) < 0.01] = 0
    widths = rng.integers(320, 641, num_images)
    heights = rng.integers(240, 641, num_images)
    image_ids = np.sort(rng.choice(600000, num_images, replace=False)) + 9
    ann_id = 1
    num_annotations = 0
    with open(path, 'w') as f:
        f.write('{"info": {"description": "COCO-shaped synthetic benchmark file", "version": "1.0", "year": 2017}, '
                '"licenses": [{"url": "http://creativecommons.org/licenses/by-nc-sa/2.0/", "id": 1, '
                '"name": "Attribution-NonCommercial-ShareAlike License"}], "images": [')
        for i in range(num_images):
            iid, w, h = int(image_ids[i]), int(widths[i]), int(heights[i])
            f.write(('' if i == 0 else ', ') + json.dumps(dict(
                license=int(rng.integers(1, 9)), file_name=f'{iid:012d}.jpg',
                coco_url=f'http://images.cocodataset.org/train2017/{iid:012d}.jpg', height=h, width=w,
                date_captured='2013-11-14 11:18:45', flickr_url=f'http://farm4.staticflickr.com/{iid}.jpg', id=iid)))
        f.write('], "annotations": [')
        first = True
        for i in range(num_images):
            iid, w, h = int(image_ids[i]), int(widths[i]), int(heights[i])
            for _ in range(int(counts[i])):
                bw, bh = float(rng.uniform(4, w * 0.6)), float(rng.uniform(4, h * 0.6))
                x, y = float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh))
                crowd = rng.random() < 0.01
                if crowd:
                    runs = rng.integers(1, 60, int(rng.integers(200, 2000)))
                    segmentation = dict(counts=runs.tolist(), size=[h, w])
                else:
                    segmentation = []
                    for _ in range(1 if rng.random() < 0.9 else 2):
                        n = int(rng.integers(6, 33))
                        xs = np.round(rng.uniform(x, x + bw, n), 2)
                        ys = np.round(rng.uniform(y, y + bh, n), 2)
                        segmentation.append(np.stack([xs, ys], 1).ravel().tolist())
                area = bw * bh * float(rng.uniform(0.3, 0.9))
                f.write(('' if first else ', ') + json.dumps(dict(
                    segmentation=segmentation, area=area, iscrowd=int(crowd), image_id=iid,
                    bbox=[round(x, 2), round(y, 2), round(bw, 2), round(bh, 2)],
                    category_id=int(rng.choice(COCO_CATEGORY_IDS)), id=ann_id)))
                first = False
                ann_id += 1
                num_annotations += 1
        categories = [dict(supercategory='thing', id=cid, name=name) for cid, name in zip(COCO_CATEGORY_IDS, names)]
        f.write('], "categories": ' + json.dumps(categories) + '}')
    return dict(images=num_images, annotations=num_annotations, bytes=os.path.getsize(path))


_MEASURE = r'''
import json, os, resource, sys, time
def rss_mb():
    with open('/proc/self/statm') as f:
        return int(f.read().split()[1]) * os.sysconf('SC_PAGE_SIZE') / 2**20
what, ann_file, work_dir = sys.argv[1:4]
pipeline = [dict(type='LoadImageFromFile'), dict(type='LoadAnnotations', with_bbox=True, with_mask=True)]
filter_cfg = dict(filter_empty_gt=True, min_size=32)
if what == 'mmdet':
    from mmengine.registry import init_default_scope
    from mmdet.datasets import CocoDataset
    init_default_scope('mmdet')
    base = rss_mb()
    start = time.perf_counter()
    dataset = CocoDataset(ann_file=ann_file, data_prefix=dict(img=''), filter_cfg=filter_cfg, pipeline=[])
    seconds = time.perf_counter() - start
    assert len(dataset) > 0
else:
    from direct_pretrain.datasets.coco_validation import validate_coco_dataset
    from direct_pretrain.datasets.check_cache import DatasetCheckCache, dataset_check_key
    from direct_pretrain.datasets.coco_reader import read_coco_categories
    base = rss_mb()
    start = time.perf_counter()
    if what == 'check':
        report = validate_coco_dataset(ann_file, '', None, check_files=False, filter_cfg=filter_cfg,
                                       pipeline=pipeline, min_usable_share=0.5)
        assert not report.fatal, report.fatal
        seconds = time.perf_counter() - start
        cache = DatasetCheckCache(work_dir)
        cache.add(dataset_check_key(ann_file, dict(pipeline=pipeline, filter_cfg=filter_cfg)), report.summary())
        cache.save()
    elif what == 'cached':
        hit = DatasetCheckCache(work_dir).lookup(dataset_check_key(ann_file, dict(pipeline=pipeline,
                                                                                  filter_cfg=filter_cfg)))
        seconds = time.perf_counter() - start
        assert hit is not None
    else:  # the class check of a val/test file reads the categories only
        categories = read_coco_categories(ann_file)
        seconds = time.perf_counter() - start
        assert len(categories) == 80
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(dict(seconds=seconds, peak_mb=peak, base_mb=base)))
'''


def measure(what: str, ann_file: str, work_dir: str) -> dict:
    """Run one measurement in a fresh interpreter; returns its figures."""
    out = subprocess.run([sys.executable, '-c', _MEASURE, what, ann_file, work_dir], capture_output=True, text=True,
                         env=dict(os.environ, OMP_NUM_THREADS='1'))
    if out.returncode:
        raise SystemExit(f'{what} failed:\n{out.stderr[-3000:]}')
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--images', type=int, default=COCO_IMAGES, help=f'images in the file (default {COCO_IMAGES})')
    parser.add_argument('--ann-file', help='annotation file to use; written first when it does not exist')
    parser.add_argument('--keep', action='store_true', help='keep the written file (with --ann-file)')
    parser.add_argument('--repeat', type=int, default=3, help='runs of each measurement (default 3)')
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        ann_file = args.ann_file or osp.join(tmp, 'instances_train.json')
        if not osp.isfile(ann_file):
            start = time.perf_counter()
            shape = write_synthetic_coco(ann_file, args.images)
            print(f'wrote {ann_file}: {shape["images"]:,} images, {shape["annotations"]:,} annotations, '
                  f'{shape["bytes"] / 2**20:.0f} MiB in {time.perf_counter() - start:.0f} s')
            written = True
        else:
            written = False
            print(f'using {ann_file} ({osp.getsize(ann_file) / 2**20:.0f} MiB)')
        work_dir = osp.join(tmp, 'work_dir')
        os.makedirs(work_dir)
        names = dict(check='dataset check', cached='same check, cached (resume)',
                     categories='class check of a val/test file', mmdet='mmdet CocoDataset init')
        runs: dict = {what: [] for what in names}
        for _ in range(max(1, args.repeat)):  # interleaved, so a busy spell of the machine hits all of them
            for what in names:
                runs[what].append(measure(what, ann_file, work_dir))
        if written and args.ann_file and not args.keep:
            os.remove(ann_file)
    def best(what):
        times = sorted(r['seconds'] for r in runs[what])
        return times[0], times[len(times) // 2], max(r['peak_mb'] for r in runs[what]), \
            max(r['peak_mb'] - r['base_mb'] for r in runs[what])

    mmdet_time, mmdet_median, _, mmdet_extra = best('mmdet')
    print(f'\n{len(runs["check"])} run(s) each{"":10}{"best":>8}{"median":>9}{"ratio":>8}{"peak RSS":>12}'
          f'{"above imports":>15}{"ratio":>8}')
    for what, name in names.items():
        seconds, median, peak, extra = best(what)
        print(f'{name:34}{seconds:7.2f}s{median:8.2f}s{seconds / mmdet_time:8.1%}{peak:8.0f} MiB'
              f'{extra:11.0f} MiB{extra / mmdet_extra:8.1%}')
    print('(ratio: best time against best time; memory: peak resident memory above the imports)')
    return 0


if __name__ == '__main__':
    sys.exit(main())
