"""The main job: direct pretrain -> finetune -> test: a checkout wrapper of ``direct_pretrain.cli.chain`` (installed as ``dp-chain``)."""
import sys

from direct_pretrain.cli.chain import main

if __name__ == '__main__':
    sys.exit(main())
