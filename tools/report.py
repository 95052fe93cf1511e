"""The run report from work dirs: a checkout wrapper of ``direct_pretrain.cli.report`` (installed as ``dp-report``)."""
import sys

from direct_pretrain.cli.report import main

if __name__ == '__main__':
    sys.exit(main())
