"""The ``cvaeq`` command line: thin click commands over the library.

Every command reports bad input as one line on stderr and exit code 2
(:mod:`cvaeq.cli.group` says which errors and how). Each command lives in its
own module and registers itself on :func:`main`; importing this package
imports them all. The library never imports this package.
"""

from __future__ import annotations

from . import data, eval, plugins, query, serve, train  # noqa: F401  (the commands register on import)
from .group import FilePath, main

__all__ = ["main", "FilePath"]
