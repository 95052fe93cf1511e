"""FLOPs and time per image of a pretrain and a fine-tune training step: a checkout wrapper of ``direct_pretrain.cli.stage_cost`` (installed as ``dp-stage-cost``)."""
import sys

from direct_pretrain.cli.stage_cost import main

if __name__ == '__main__':
    sys.exit(main())
