"""Auxiliary BatchNorm statistics: let an attack run BatchNorm in training mode without touching the model's own.

The official LP-A3 code (Yang et al. 2022, arXiv:2211.00824; github.com/CausalLearning/LPA3) runs its attack through
auxiliary BatchNorm layers (``adv=True``) in training mode: each attacked batch is normalized with its own statistics
and the main layers' running statistics are not updated. A generic trainer cannot add layers; this context manager
gives every BatchNorm of the model fresh copies of its running buffers for the duration of the block and puts the
originals back untouched (not written in place, so autograd graphs built before the block stay valid).

.. math:: \\hat x = \\frac{x - \\mu_B}{\\sqrt{\\sigma_B^2 + \\epsilon}} \\gamma + \\beta, \\qquad
          (\\mu_{\\text{run}}, \\sigma^2_{\\text{run}}) \\text{ unchanged}
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from torch import nn

from .._compat import BatchNorm

_BUFFERS = ("running_mean", "running_var", "num_batches_tracked")


@contextmanager
def auxiliary_statistics(model: nn.Module) -> Iterator[None]:
    """Within the block every BatchNorm of ``model`` updates copies of its running statistics; restored on exit.

    Args:
        model: the model whose BatchNorm layers get auxiliary buffers.

    Examples:
        >>> import torch
        >>> bn = torch.nn.BatchNorm1d(2).train()
        >>> with auxiliary_statistics(bn):
        ...     _ = bn(torch.randn(4, 2) + 5)
        ...     bool(bn.running_mean.abs().sum() > 0)
        True
        >>> bn.running_mean.tolist(), int(bn.num_batches_tracked)
        ([0.0, 0.0], 0)
    """
    saved = []
    for module in model.modules():
        if isinstance(module, BatchNorm):
            for name in _BUFFERS:
                value = getattr(module, name, None)
                if value is not None:
                    saved.append((module, name, value))
                    setattr(module, name, value.clone())
    try:
        yield
    finally:
        for module, name, value in saved:
            setattr(module, name, value)


__all__ = ["auxiliary_statistics"]
