"""``python -m cvaeq``: the command line, also as torchrun runs it::

    torchrun --nproc-per-node 2 -m cvaeq -- eval --n 1000 --json

(the ``--`` keeps torchrun from reading ``--n`` as an abbreviation of its own options).
"""

import sys

from .cli import main

if __name__ == "__main__":
    args = sys.argv[1:]
    main(args[1:] if args[:1] == ["--"] else args, prog_name="cvaeq")
