"""Training: one loop (:class:`AdversarialTrainer`) for plain, adversarial, SAT, LP-A3 and style-augmented training.

Modules by concept: ``loop`` (epochs, steps, AMP, DDP, callbacks; override points ``compute_loss``,
``after_backward``, ``sample_memories``), ``functional`` (the loss formulas and LP-A3's selection maths), ``memory``
(LP-A3's selection memory, SAT's saliency cache), ``checkpoint`` (atomic save, validated load, RNG), ``presets``
(:class:`SATTrainer`, :class:`LPA3Trainer`), ``classifier`` (:func:`train_classifier`), ``evaluation``
(:func:`accuracy`, :func:`predict`).
"""

from ..data.batches import split_batch
from . import functional
from .checkpoint import CheckpointError, load_checkpoint
from .classifier import train_classifier
from .evaluation import accuracy, predict
from .loop import AdversarialTrainer
from .memory import SaliencyCache, SampleMemory, SelectionMemory
from .presets import LPA3Trainer, SATTrainer

__all__ = [
    "AdversarialTrainer",
    "CheckpointError",
    "LPA3Trainer",
    "SATTrainer",
    "SaliencyCache",
    "SampleMemory",
    "SelectionMemory",
    "accuracy",
    "functional",
    "load_checkpoint",
    "predict",
    "split_batch",
    "train_classifier",
]
