"""The built-in story ``default`` (``cvaeq/stories/default.toml``)."""

from pathlib import Path

from ..hookspecs import hookimpl


@hookimpl
def register_stories(register):
    register("default", str(Path(__file__).resolve().parent.parent / "stories" / "default.toml"))
