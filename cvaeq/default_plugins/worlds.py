"""The built-in worlds ``dsprites``, ``pendulum``, ``colour_pendulum`` and ``morphomnist``, registered like others."""

from ..hookspecs import hookimpl


@hookimpl
def register_worlds(register):
    from ..worlds.dsprites import WORLD

    register(WORLD)
    from ..worlds.pendulum import WORLD as PENDULUM

    register(PENDULUM)
    from ..worlds.colour_pendulum import WORLD as COLOUR_PENDULUM

    register(COLOUR_PENDULUM)
    from ..worlds.morphomnist import WORLD as MORPHOMNIST

    register(MORPHOMNIST)
