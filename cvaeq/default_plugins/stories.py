"""The built-in stories ``default`` (the dSprites world's ``default.toml``) and ``pendulum``."""

from ..hookspecs import hookimpl


@hookimpl
def register_stories(register):
    from ..worlds.dsprites import STORY_PATH

    register("default", str(STORY_PATH))
    from ..worlds.pendulum import STORY_NAME
    from ..worlds.pendulum import STORY_PATH as PENDULUM

    register(STORY_NAME, str(PENDULUM))
