"""The built-in image-model family ``causal_vae``, registered like any third-party family."""

from ..hookspecs import hookimpl


@hookimpl
def register_image_models(register):
    from ..model.causal_vae import CausalVAEFamily

    register("causal_vae", CausalVAEFamily())
