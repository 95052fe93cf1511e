"""Train a detector: a checkout wrapper of ``direct_pretrain.cli.train`` (installed as ``dp-train``)."""
import sys

from direct_pretrain.cli.train import main

if __name__ == '__main__':
    sys.exit(main())
