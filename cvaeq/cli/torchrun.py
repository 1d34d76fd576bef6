"""``python -m cvaeq.cli.torchrun [cvaeq train options]``: one process of a
torchrun launch of ``cvaeq train --distributed`` (:mod:`cvaeq.model.distributed`)::

    torchrun --nproc_per_node=2 -m cvaeq.cli.torchrun -- --n 200000 --epochs 20 --out model.safetensors

The ``--`` stops torchrun from reading ``--n`` as an abbreviation of its own options.
"""

from __future__ import annotations

import sys

__all__ = ["main"]


def main(argv: list[str] | None = None) -> None:
    """Run ``cvaeq train --distributed`` with ``argv`` (default: the command line)."""
    from . import main as cli

    args = list(sys.argv[1:] if argv is None else argv)
    if args[:1] == ["--"]:  # torchrun needs `--` before options it would mistake for its own (--n)
        args = args[1:]
    cli.main(["train", "--distributed", *args], prog_name="cvaeq")


if __name__ == "__main__":
    main()
