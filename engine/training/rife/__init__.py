"""Our own torch implementation of RIFE's IFNet (Huang et al., ECCV 2022) in two generations.

``hdv3`` is the ECCV2022-RIFE "HDv3" network (three IFBlocks, PReLU, symmetric two-way inference,
t = 0.5 only). ``v4`` is the Practical-RIFE 4.2x network (a feature head, five IFBlocks with
residual convolutions, an explicit timestep input). Module and parameter names follow the
published checkpoints so their state_dicts load without renaming (a ``module.`` prefix left by
DataParallel is stripped by ``load_checkpoint``).

Both networks take two images as float32 NCHW in [0, 1] with height and width divisible by
``PAD_MULTIPLE`` of their module, and return a ``FusionOutput``: the merged frame and what it was
made of (both warped inputs, the fusion mask, the flow), from which the runtime derives a risk map.
"""

from engine.training.rife.common import FusionOutput, load_checkpoint

__all__ = ["FusionOutput", "load_checkpoint"]
