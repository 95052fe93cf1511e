"""Release (mmdet 2.x) checkpoint -> mmdet 3.x checkpoint: a checkout wrapper of ``direct_pretrain.cli.convert_release`` (installed as ``dp-convert-release``)."""
import sys

from direct_pretrain.cli.convert_release import main

if __name__ == '__main__':
    sys.exit(main())
