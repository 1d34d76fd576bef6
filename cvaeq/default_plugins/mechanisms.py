"""The built-in mechanism families, registered like any third-party plugin's."""

from ..hookspecs import hookimpl
from ..mechanisms.continuous import continuous
from ..mechanisms.gaussian import gaussian_latent
from ..mechanisms.gumbel import gumbel_max
from ..mechanisms.image import bernoulli_image


@hookimpl
def register_mechanisms(register):
    register("gumbel_max", gumbel_max)
    register("bernoulli_image", bernoulli_image)
    register("gaussian_latent", gaussian_latent)
    register("continuous", continuous)
