"""Write the shipped Morpho-MNIST checkpoint from the shipped networks and the ``morphomnist`` story.

The networks (``OUT/networks.safetensors`` of ``benchmarks/train_morphomnist.py --out OUT``) were trained on
the world's labelled files by ``benchmarks/train_morphomnist.py`` (the command
and its figures: docs/models.md, "conv_causal_vae"); they do not depend on the
story. Once the ``morphomnist`` story is registered, this joins the two into
``cvaeq/weights/morphomnist.safetensors``, the checkpoint ``--story morphomnist``
finds (:func:`cvaeq.loading.shipped_checkpoint`):

    python benchmarks/ship_morphomnist.py runs/morphomnist/networks.safetensors
"""

from __future__ import annotations

import sys

from cvaeq.loading import WEIGHTS
from cvaeq.model.conv_family import networks_checkpoint
from cvaeq.story import load_story

#: How the shipped networks were trained (recorded in the checkpoint's train_config).
TRAIN_CONFIG = {
    "command": "nice python benchmarks/train_morphomnist.py --out OUT --minutes 25",
    "family": "conv_causal_vae",
    "rows": "0-6999",
    "batch": 128,
    "lr": 2e-3,
    "seed": 0,
    "threads": 1,
    "time_limit": 25.0,
}


def main() -> None:
    out = networks_checkpoint(
        sys.argv[1], load_story("morphomnist"), WEIGHTS / "morphomnist.safetensors",
        TRAIN_CONFIG,
    )
    print(out)


if __name__ == "__main__":
    main()
