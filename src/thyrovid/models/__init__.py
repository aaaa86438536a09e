"""The five architectures of the paper, for 2D frames and 3D clips from one definition.

``build_model(name, dims=3, ...)`` builds one of ``list_models()``; ``inflate_2d_to_3d`` turns
trained 2D weights into a 3D network's starting weights (I3D-style).
"""

from thyrovid.models.inflate import inflate_2d_to_3d
from thyrovid.models.registry import build_model, list_models, register

__all__ = ["build_model", "inflate_2d_to_3d", "list_models", "register"]
