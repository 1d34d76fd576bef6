"""The built-in image-model families ``causal_vae`` and ``conv_causal_vae``, registered like any third-party family."""

from ..hookspecs import hookimpl


@hookimpl
def register_image_models(register):
    from ..model.causal_vae import CausalVAEFamily
    from ..model.conv_family import FAMILY, ConvCausalVAEFamily

    register("causal_vae", CausalVAEFamily())
    register(FAMILY, ConvCausalVAEFamily())
