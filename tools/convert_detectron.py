"""Detectron .pkl -> mmdet checkpoint: a checkout wrapper of ``direct_pretrain.cli.convert_detectron`` (installed as ``dp-convert-detectron``)."""
import sys

from direct_pretrain.cli.convert_detectron import main

if __name__ == '__main__':
    sys.exit(main())
