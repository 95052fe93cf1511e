"""Test (and evaluate) a detector: a checkout wrapper of ``direct_pretrain.cli.test`` (installed as ``dp-test``)."""
import sys

from direct_pretrain.cli.test import main

if __name__ == '__main__':
    sys.exit(main())
