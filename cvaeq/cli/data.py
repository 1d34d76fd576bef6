"""`cvaeq data` commands (to be written)."""

from . import main  # noqa: F401
