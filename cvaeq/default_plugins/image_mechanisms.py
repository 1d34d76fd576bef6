"""The built-in image mechanisms ``bernoulli`` (binary pixels) and ``discretised_logistic``
(8-bit levels), registered like any third-party plugin's."""

from ..hookspecs import hookimpl


@hookimpl
def register_image_mechanisms(register):
    from ..mechanisms.image_mechanisms import bernoulli, discretised_logistic

    register("bernoulli", bernoulli)
    register("discretised_logistic", discretised_logistic)
