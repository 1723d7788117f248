"""Former home of the training loop, kept so that ``captum_wsam.train.adversarial`` imports keep working.

The loop is now split by concept: :mod:`~captum_wsam.train.loop` (:class:`AdversarialTrainer`),
:mod:`~captum_wsam.train.functional` (loss formulas), :mod:`~captum_wsam.train.memory` (per-sample state),
:mod:`~captum_wsam.train.checkpoint` and :mod:`~captum_wsam.train.presets` (:class:`SATTrainer`, :class:`LPA3Trainer`).
"""

from __future__ import annotations

import torch

from .checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_NAME, CheckpointError, load_checkpoint
from .loop import AdversarialTrainer
from .presets import LPA3Trainer, SATTrainer

__all__ = [
    "CHECKPOINT_FORMAT",
    "CHECKPOINT_NAME",
    "AdversarialTrainer",
    "CheckpointError",
    "LPA3Trainer",
    "SATTrainer",
    "load_checkpoint",
    "torch",
]
