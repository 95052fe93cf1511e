"""``dp-make-toy-coco`` / ``tools/make_toy_coco.py``: generate the embedded toy COCO dataset.

``dp-make-toy-coco [ROOT] [--num-train N] ...``; ``dp-make-toy-coco --keypoints [ROOT]`` for the stick figures.
"""
import argparse
import logging
import sys
from typing import List, Optional

from ..datasets.toy_coco import ToyCocoSpec, ToyKeypointSpec, generate_toy_coco, generate_toy_keypoints

__all__ = ['main']


def main(argv: Optional[List[str]] = None) -> int:
    defaults = ToyCocoSpec()
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument('root', nargs='?', default='data/toy_coco', help='output folder (default data/toy_coco)')
    parser.add_argument('--num-train', type=int, default=defaults.num_train)
    parser.add_argument('--num-val', type=int, default=defaults.num_val)
    parser.add_argument('--min-long-side', type=int, default=defaults.min_long_side)
    parser.add_argument('--max-long-side', type=int, default=defaults.max_long_side)
    parser.add_argument('--max-objects', type=int, default=defaults.max_objects)
    parser.add_argument('--seed', type=int, default=defaults.seed)
    parser.add_argument('--keypoints', action='store_true',
                        help='generate the toy keypoint set (stick figures, person_keypoints_*.json) with its '
                        'default sizes instead (ROOT defaults to data/toy_keypoints)')
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format='%(message)s')
    if args.keypoints:
        root = 'data/toy_keypoints' if args.root == 'data/toy_coco' else args.root
        for split, path in generate_toy_keypoints(root, ToyKeypointSpec(seed=args.seed)).items():
            print(f'{split}: {path}')
        return 0
    spec = ToyCocoSpec(num_train=args.num_train, num_val=args.num_val, min_long_side=args.min_long_side,
                       max_long_side=args.max_long_side, max_objects=args.max_objects, seed=args.seed)
    for split, path in generate_toy_coco(args.root, spec).items():
        print(f'{split}: {path}')
    return 0


if __name__ == '__main__':
    sys.exit(main())
