"""The built-in world ``dsprites``, registered like any third-party world."""

from ..hookspecs import hookimpl


@hookimpl
def register_worlds(register):
    from ..worlds.dsprites import WORLD

    register(WORLD)
