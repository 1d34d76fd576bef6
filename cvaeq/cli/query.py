"""`cvaeq query` commands (to be written)."""

from . import main  # noqa: F401
