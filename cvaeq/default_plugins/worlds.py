"""The built-in worlds ``dsprites`` and ``pendulum``, registered like any third-party world."""

from ..hookspecs import hookimpl


@hookimpl
def register_worlds(register):
    from ..worlds.dsprites import WORLD

    register(WORLD)
    from ..worlds.pendulum import WORLD as PENDULUM

    register(PENDULUM)
