"""``dp-infer`` / ``tools/infer.py``: run a trained detector over a folder of images (the original
``infer_simple``).

``dp-infer CONFIG CHECKPOINT IMAGE_DIR --out-dir D [--score-thr 0.3] [--device cpu]``

Writes ``D/vis/<image>`` (boxes and masks drawn) and ``D/predictions.json`` (per image:
boxes xyxy, labels, class names, scores, masks as COCO RLE). Files that are not images
are skipped with a message.
"""
import argparse
import logging
import sys
from typing import List, Optional

from ..apis.inference import infer_images
from ..errors import InferenceInputError

__all__ = ['main']


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument('config', help='config file of the model')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('image_dir', help='folder of images')
    parser.add_argument('--out-dir', required=True, help='output folder (vis/ and predictions.json)')
    parser.add_argument('--score-thr', type=float, default=0.3, help='minimum score drawn and written')
    parser.add_argument('--device', default=None, help='cpu, cuda:0, ... (default: CUDA when available)')
    parser.add_argument('--batch-size', type=int, default=1, help='images per forward pass')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='[infer] %(message)s')
    try:
        result = infer_images(args.config, args.checkpoint, args.image_dir, args.out_dir, args.score_thr,
                              args.device, args.batch_size)
    except InferenceInputError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    for name, count in result.num_instances.items():
        print(f'{name}: {count} instance(s) with score >= {args.score_thr}')
    print(f'predictions: {result.predictions_file}\ndrawn images: {result.vis_dir}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
