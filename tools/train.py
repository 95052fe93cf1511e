"""Train a detector: ``python tools/train.py CONFIG [--work-dir D] [--resume [CKPT]] [--amp] ...``"""
import logging
import os
import sys

from torch.distributed.elastic.multiprocessing.errors import record

import direct_pretrain  # noqa: F401  (registers modules, safe checkpoint loading)
from direct_pretrain.apis.config_checks import ConfigInputError
from direct_pretrain.apis.training import build_train_config, parse_train_args, train


@record  # under torchrun, a failing rank's traceback is shown in the job's error summary
def main() -> int:
    args = parse_train_args()
    rank0 = os.environ.get('RANK', '0') == '0'
    logging.basicConfig(level=logging.INFO if rank0 else logging.WARNING, format='[%(name)s] %(message)s')
    try:
        cfg = build_train_config(args)
    except ConfigInputError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    train(cfg)
    return 0


if __name__ == '__main__':
    sys.exit(main())
