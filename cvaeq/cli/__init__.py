"""The ``cvaeq`` command line: thin click commands over the library.

Any :class:`~cvaeq.errors.CvaeqError` (and click's own usage errors) ends the
command with one line on stderr and exit code 2, never a traceback. So does,
as the last line of defence, what the system or the input can cause anywhere
(:data:`ENVIRONMENT_ERRORS`: an ``OSError`` such as a full disk or an
unwritable folder, ``MemoryError``, ``RecursionError``, a decoding error).
Any other exception is a bug in cvaeq and keeps its traceback; with
``CVAEQ_DEBUG=1`` in the environment the environment errors keep theirs too.
"""

from __future__ import annotations

import os
import sys

import click

from ..errors import CvaeqError

__all__ = ["main", "ENVIRONMENT_ERRORS", "one_line", "FilePath"]

#: Errors the system or the input can cause anywhere: one line and exit 2 at the CLI.
ENVIRONMENT_ERRORS = (OSError, MemoryError, RecursionError, UnicodeError)


def one_line(e: BaseException) -> str:
    """The one-line message of an environment error: what happened and what to do."""
    if isinstance(e, OSError):
        what = e.strerror or str(e) or type(e).__name__
        where = f"{e.filename}: " if e.filename else ""
        hint = "; free some space and run it again" if getattr(e, "errno", None) in (28, 122) else ""
        return f"{where}{what}{hint}"
    if isinstance(e, MemoryError):
        return "out of memory; ask for fewer images, particles or a smaller model (bounds: docs/cli.md)"
    if isinstance(e, RecursionError):
        return "the input is nested too deeply to read"
    if isinstance(e, UnicodeError):
        return f"text that is not valid UTF-8 ({getattr(e, 'reason', e)}); save files as UTF-8"
    return str(e)


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


from . import data as _data  # noqa: E402,F401  (commands register on import)
from . import plugins as _plugins  # noqa: E402,F401
from . import query as _query  # noqa: E402,F401
from . import train as _train  # noqa: E402,F401
from . import eval as _eval  # noqa: E402,F401
from . import serve as _serve  # noqa: E402,F401
