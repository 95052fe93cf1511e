"""Time reading + converting a Detectron ImageNet R-50 ``.pkl`` (target: < 2 s).

    python tools/benchmark_convert_detectron.py                 # synthetic R-50.pkl, real shapes
    python tools/benchmark_convert_detectron.py --pkl R-50.pkl  # a real file

The synthetic file has every blob of MSRA's R-50.pkl (names and shapes from the converter's
R-50 table, plus the ``fc1000``/``conv1_b`` leftovers) with random float32 values, pickled at
protocol 2. Imports are excluded from the timing; the best and mean of ``--repeat`` runs are
printed.
"""
import argparse
import os
import os.path as osp
import pickle
import statistics
import sys
import tempfile
import time

import numpy as np

from mmdet.models.backbones import ResNet
from direct_pretrain.checkpoint.detectron import convert_detectron
from direct_pretrain.checkpoint.detectron.c2_mapping import build_mapping, parse_arch
from direct_pretrain.checkpoint.detectron.reader import load_detectron_blobs


def synthetic_r50(path: str) -> None:
    """Write an R-50.pkl look-alike: table blob names/shapes taken from mmdet's ResNet-50."""
    shapes = {key: tuple(value.shape) for key, value in ResNet(depth=50, style='caffe').state_dict().items()}
    rng = np.random.default_rng(0)
    blobs = {rule.source: rng.standard_normal(shapes[rule.target], dtype=np.float32)
             for rule in build_mapping(parse_arch('R-50')).rules}
    blobs.update(fc1000_w=rng.standard_normal((1000, 2048), dtype=np.float32),
                 fc1000_b=np.zeros(1000, np.float32), conv1_b=np.zeros(64, np.float32))
    with open(path, 'wb') as handle:
        pickle.dump(blobs, handle, protocol=2)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--pkl', help='Detectron file to time (default: a synthetic R-50.pkl)')
    parser.add_argument('--arch', default='auto', help="architecture (default 'auto')")
    parser.add_argument('--repeat', type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.pkl
        if path is None:
            path = osp.join(tmp, 'R-50.pkl')
            synthetic_r50(path)
        size_mb = os.path.getsize(path) / 2**20
        reads, totals = [], []
        for _ in range(args.repeat):
            start = time.perf_counter()
            blobs = load_detectron_blobs(path)
            read = time.perf_counter()
            state_dict, report = convert_detectron(blobs, args.arch)
            end = time.perf_counter()
            reads.append(read - start)
            totals.append(end - start)
        params = sum(v.numel() for v in state_dict.values()) / 1e6
    print(f'{path} ({size_mb:.0f} MiB) -> {report.arch["name"]}: {len(state_dict)} tensors, {params:.1f}M values')
    print(f'read+convert: best {min(totals):.3f} s, mean {statistics.mean(totals):.3f} s over {args.repeat} runs '
          f'(read alone: best {min(reads):.3f} s)')
    return 0 if min(totals) < 2.0 else 1


if __name__ == '__main__':
    sys.exit(main())
