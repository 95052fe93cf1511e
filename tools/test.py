"""Test a detector: ``python tools/test.py CONFIG CHECKPOINT [--eval bbox segm] [--out r.pkl] ...``"""
import sys

from torch.distributed.elastic.multiprocessing.errors import record

import direct_pretrain  # noqa: F401  (registers modules, safe checkpoint loading)
from direct_pretrain.apis.config_checks import ConfigInputError
from direct_pretrain.apis.testing import build_test_config, parse_test_args, test


@record  # under torchrun, a failing rank's traceback is shown in the job's error summary
def main() -> int:
    args = parse_test_args()
    try:
        cfg = build_test_config(args)
    except ConfigInputError as error:
        print(f'error: {error}', file=sys.stderr)
        return 2
    test(cfg, out=args.out, metrics_out=args.metrics_out)
    return 0


if __name__ == '__main__':
    sys.exit(main())
