"""Every private name of a host library the package uses, imported in this one module.

Captum, torchattacks and PyTorch do not promise these names across releases. Importing them here (and nowhere else;
``tests/test_imports.py`` checks it) means a host upgrade that moves one breaks one file, with the fallback written
next to it. Public host APIs (``captum.attr.GradientAttribution``, ``torchattacks.Attack``, ...) are imported where
they are used.

Names:
    - ``format_additional_forward_args``, ``select_targets`` (``captum._utils.common``): Captum's own handling of
      ``additional_forward_args`` and of its ``target`` convention, so that our ``attribute()`` methods accept exactly
      what Captum's do.
    - ``compute_layer_gradients_and_eval`` (``captum._utils.gradient``): the layer activations and gradients of
      ``LayerGradCam``, used by SAM/WSAM.
    - ``BatchNorm`` (``torch.nn.modules.batchnorm._BatchNorm``): the common base class of BatchNorm1d/2d/3d and
      SyncBatchNorm (``isinstance`` checks of the trainer and the LRP canonizers).
"""

from __future__ import annotations

from captum._utils.common import _format_additional_forward_args as format_additional_forward_args
from captum._utils.common import _select_targets as select_targets
from captum._utils.gradient import compute_layer_gradients_and_eval
from torch.nn.modules.batchnorm import _BatchNorm as BatchNorm

# the original private spellings, for one-line import changes in modules that use them under those names
_format_additional_forward_args = format_additional_forward_args
_select_targets = select_targets

__all__ = [
    "BatchNorm",
    "compute_layer_gradients_and_eval",
    "format_additional_forward_args",
    "select_targets",
]
