"""Show what each stage's train pipeline feeds the model: a checkout wrapper of ``direct_pretrain.cli.browse_pipeline`` (installed as ``dp-browse-pipeline``)."""
import sys

from direct_pretrain.cli.browse_pipeline import main

if __name__ == '__main__':
    sys.exit(main())
