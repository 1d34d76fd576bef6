"""The dSprites world: factors, rendering, files, resampling."""
