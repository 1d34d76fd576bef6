"""The ``cvaeq`` command group: how every command reports bad input.

Any :class:`~cvaeq.errors.CvaeqError` (and click's own usage errors) ends the
command with one line on stderr and exit code 2, never a traceback. So does,
as the last line of defence, what the system or the input can cause anywhere
(:data:`~cvaeq.errors.ENVIRONMENT_ERRORS`: an ``OSError`` such as a full disk
or an unwritable folder, ``MemoryError``, ``RecursionError``, a decoding
error). Any other exception is a bug in cvaeq and keeps its traceback; with
``CVAEQ_DEBUG=1`` in the environment the environment errors keep theirs too.
The commands register themselves on :func:`main` in their own modules
(:mod:`cvaeq.cli` imports them all).
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import ENVIRONMENT_ERRORS, CvaeqError, one_line

__all__ = ["main", "FilePath"]


class FilePath(click.Path):
    """``click.Path`` that refuses a name with a NUL byte as a usage error
    (click's own check would raise ``ValueError`` from ``os.stat``)."""

    def convert(self, value, param, ctx):
        if "\0" in str(value):
            self.fail(f"{str(value)!r} is not a valid file name", param, ctx)
        return super().convert(value, param, ctx)


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
        except ENVIRONMENT_ERRORS as e:
            if os.environ.get("CVAEQ_DEBUG") == "1":
                raise
            click.echo(f"error: {' '.join(one_line(e).split())}", err=True)
            sys.exit(2)

    def group(self, *args, **kwargs):
        kwargs.setdefault("cls", _Group)
        return super().group(*args, **kwargs)


@click.group(cls=_Group)
@click.version_option(package_name="cvaeq")
def main() -> None:
    """Ask causal questions about images (dSprites and any world a plugin adds)."""
