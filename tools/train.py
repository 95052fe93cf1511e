"""Train a detector: ``python tools/train.py CONFIG [--work-dir D] [--resume [CKPT]] [--amp] ...``"""
import sys

import direct_pretrain  # noqa: F401  (registers modules, safe checkpoint loading)
from direct_pretrain.apis.config_checks import ConfigInputError
from direct_pretrain.apis.training import build_train_config, parse_train_args, train


def main() -> int:
    args = parse_train_args()
    try:
        cfg = build_train_config(args)
    except ConfigInputError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    train(cfg)
    return 0


if __name__ == '__main__':
    sys.exit(main())
