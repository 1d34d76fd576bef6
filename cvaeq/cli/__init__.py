"""The ``cvaeq`` command line: thin click commands over the library.

Any :class:`~cvaeq.errors.CvaeqError` (and click's own usage errors) ends the
command with one line on stderr and exit code 2, never a traceback.
"""

from __future__ import annotations

import sys

import click

from ..errors import CvaeqError

__all__ = ["main"]


class _Group(click.Group):
    """A group whose commands report user errors as one line, exit code 2."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except CvaeqError as e:
            click.echo(f"error: {e}", err=True)
            sys.exit(2)
        except click.UsageError as e:  # one line, not click's multi-line usage dump
            click.echo(f"error: {e.format_message()}", err=True)
            sys.exit(2)

    def group(self, *args, **kwargs):
        kwargs.setdefault("cls", _Group)
        return super().group(*args, **kwargs)


@click.group(cls=_Group)
@click.version_option(package_name="cvaeq")
def main() -> None:
    """Ask causal questions about images (dSprites and any world a plugin adds)."""


from . import data as _data  # noqa: E402,F401  (commands register on import)
from . import plugins as _plugins  # noqa: E402,F401
from . import query as _query  # noqa: E402,F401
from . import train as _train  # noqa: E402,F401
from . import eval as _eval  # noqa: E402,F401
