"""Inference on a folder of images: a checkout wrapper of ``direct_pretrain.cli.infer`` (installed as ``dp-infer``)."""
import sys

from direct_pretrain.cli.infer import main

if __name__ == '__main__':
    sys.exit(main())
