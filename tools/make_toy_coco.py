"""Generate the embedded toy COCO dataset: a checkout wrapper of ``direct_pretrain.cli.make_toy_coco`` (installed as ``dp-make-toy-coco``)."""
import sys

from direct_pretrain.cli.make_toy_coco import main

if __name__ == '__main__':
    sys.exit(main())
