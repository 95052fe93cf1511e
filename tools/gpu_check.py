"""Check and measure the package on a CUDA machine: a checkout wrapper of ``direct_pretrain.cli.gpu_check``."""
import sys

from direct_pretrain.cli.gpu_check import main

if __name__ == '__main__':
    sys.exit(main())
