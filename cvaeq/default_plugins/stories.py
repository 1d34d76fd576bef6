"""The built-in stories ``default`` (the dSprites world's ``default.toml``), ``pendulum``, ``colour_pendulum``
and ``morphomnist`` (DeepSCM's SCM)."""

from ..hookspecs import hookimpl


@hookimpl
def register_stories(register):
    from ..worlds.dsprites import STORY_PATH

    register("default", str(STORY_PATH))
    from ..worlds.pendulum import STORY_NAME
    from ..worlds.pendulum import STORY_PATH as PENDULUM

    register(STORY_NAME, str(PENDULUM))
    from ..worlds.colour_pendulum import STORY_NAME as COLOUR
    from ..worlds.colour_pendulum import STORY_PATH as COLOUR_PATH

    register(COLOUR, str(COLOUR_PATH))
    from ..worlds.morphomnist import STORY_NAME as MORPHO
    from ..worlds.morphomnist import STORY_PATH as MORPHO_PATH

    register(MORPHO, str(MORPHO_PATH))
