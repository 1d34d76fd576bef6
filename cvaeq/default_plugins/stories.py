"""The built-in story ``default`` (the dSprites world's ``default.toml``)."""

from ..hookspecs import hookimpl


@hookimpl
def register_stories(register):
    from ..worlds.dsprites import STORY_PATH

    register("default", str(STORY_PATH))
