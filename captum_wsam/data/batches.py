"""Batches and loaders: the one place that turns "a Dataset or a DataLoader" into batches.

Every public function of the package that iterates over data takes it as one argument named ``data`` (a
``torch.utils.data.Dataset`` or ``DataLoader`` of ``(image, label[, info])`` items, as
:class:`~captum_wsam.data.ShapesTextures` yields); :func:`as_loader` makes the loader, :func:`split_batch` splits a
batch, and :func:`renamed_data_argument` keeps the older names of that argument (``loader``, ``dataset``) working with
a ``DeprecationWarning``.

No maths here: this module sits at the bottom of the package (it imports only torch), so that attributions, metrics
and the trainer can share it without importing each other.
"""

from __future__ import annotations

import functools
import inspect
import warnings
from collections.abc import Callable
from typing import Any, TypeVar

import torch
from torch import Tensor
from torch.utils.data import DataLoader, Dataset

F = TypeVar("F", bound=Callable[..., Any])


def split_batch(batch: Any) -> tuple[Tensor, Tensor, dict[str, Any]]:
    """Split a DataLoader batch into ``(images, labels, info)``; ``info`` is ``{}`` for ``(images, labels)`` batches.

    .. math:: (x, y[, \\mathrm{info}]) \\mapsto (x, y, \\mathrm{info})

    Args:
        batch: ``(images, labels)`` or ``(images, labels, info)`` (a tuple or list, as a DataLoader yields).

    Returns:
        ``(images, labels, info)``.

    Shape:
        - images: :math:`(B, C, H, W)`; labels: :math:`(B,)` (passed through unchanged).

    Raises:
        TypeError: ``batch`` is not a 2- or 3-sequence.

    Examples:
        >>> images, labels, info = split_batch((torch.zeros(2, 3, 4, 4), torch.zeros(2, dtype=torch.long)))
        >>> images.shape, labels.shape, info
        (torch.Size([2, 3, 4, 4]), torch.Size([2]), {})
    """
    if isinstance(batch, (tuple, list)) and len(batch) in (2, 3):
        images, labels = batch[0], batch[1]
        info = batch[2] if len(batch) == 3 else {}
        return images, labels, info
    raise TypeError(f"batch must be (images, labels) or (images, labels, info), got {type(batch).__name__}")


class IndexedDataset(Dataset):
    """Any ``(image, label[, info])`` Dataset with each item's position added as ``info["index"]``.

    The SAT saliency cache and LP-A3's per-sample memory (Mangla et al. 2020, arXiv:2006.07828; Yang et al. 2022,
    arXiv:2211.00824) keep one entry per training sample and find it through ``info["index"]``;
    :class:`~captum_wsam.data.ShapesTextures` supplies it, torchvision data sets (``CIFAR10``, ``ImageFolder``...)
    do not. Wrapping them is all it takes:

    .. math:: (x_i, y_i[, \\mathrm{info}_i]) \\mapsto (x_i, y_i, \\mathrm{info}_i \\cup \\{\\mathrm{index}: i\\})

    Args:
        dataset: a map-style Dataset of ``(image, label)`` or ``(image, label, info)`` items (``info`` a dict).

    Shape:
        - an item: ``(image, label, info)`` with ``info["index"] = i`` (an ``int``; a DataLoader collates a batch's
          into a :math:`(B,)` long tensor).

    Examples:
        >>> from torch.utils.data import TensorDataset
        >>> data = IndexedDataset(TensorDataset(torch.zeros(5, 3, 8, 8), torch.arange(5)))
        >>> image, label, info = data[3]
        >>> len(data), int(label), info
        (5, 3, {'index': 3})
    """

    def __init__(self, dataset: Dataset) -> None:
        if not isinstance(dataset, Dataset) or not callable(getattr(dataset, "__len__", None)):
            raise TypeError(f"dataset must be a map-style torch Dataset with __len__, got {type(dataset).__name__}")
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> tuple[Any, Any, dict[str, Any]]:
        item = self.dataset[index]
        if not isinstance(item, (tuple, list)) or len(item) not in (2, 3):
            raise TypeError(f"dataset items must be (image, label) or (image, label, info), got "
                            f"{type(item).__name__} at index {index}")
        info = dict(item[2]) if len(item) == 3 else {}
        info["index"] = int(index)
        return item[0], item[1], info


def as_loader(
    data: Dataset | DataLoader,
    batch_size: int = 64,
    *,
    shuffle: bool = False,
    seed: int = 0,
    name: str = "data",
) -> DataLoader:
    """``data`` itself when it is a DataLoader, else a DataLoader over the Dataset (seeded shuffling when asked).

    .. math:: \\text{Dataset} \\mapsto \\text{batches of } B \\text{ items (order } \\pi_{\\text{seed}}
              \\text{ when shuffled)}

    Args:
        data: a ``Dataset`` or ``DataLoader``.
        batch_size: :math:`B`, used when ``data`` is a Dataset.
        shuffle: shuffle a Dataset with a generator seeded by ``seed``.
        seed: seed of the shuffling.
        name: the caller's argument name, for error messages.

    Returns:
        A DataLoader.

    Raises:
        TypeError: ``data`` is neither a Dataset nor a DataLoader.
        ValueError: ``batch_size`` is not a positive integer.

    Examples:
        >>> from torch.utils.data import TensorDataset
        >>> loader = as_loader(TensorDataset(torch.zeros(5, 3), torch.zeros(5)), batch_size=2)
        >>> [len(x) for x, _ in loader], as_loader(loader) is loader
        ([2, 2, 1], True)
    """
    if isinstance(data, DataLoader):
        return data
    if not isinstance(data, Dataset):
        raise TypeError(f"{name} must be a torch Dataset or DataLoader, got {type(data).__name__}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
    generator = torch.Generator().manual_seed(seed) if shuffle else None
    return DataLoader(data, batch_size=batch_size, shuffle=shuffle, generator=generator)


def renamed_data_argument(*old_names: str, new: str = "data") -> Callable[[F], F]:
    """Decorator: the keyword ``data`` is the argument's name; ``old_names`` still work with a ``DeprecationWarning``.

    .. math:: f(\\ldots, \\text{old}=v) \\;\\to\\; f(\\ldots, \\text{data}=v)

    Args:
        *old_names: former keyword names of the argument (``"loader"``, ``"dataset"``).
        new: the current name (a parameter of the decorated function).

    Returns:
        The decorator.

    Raises:
        TypeError: (at call time) both the new and an old name are given.

    Examples:
        >>> import warnings
        >>> @renamed_data_argument("loader")
        ... def count(data, batch_size=2):
        ...     return len(data)
        >>> with warnings.catch_warnings(record=True) as caught:
        ...     warnings.simplefilter("always")
        ...     count(loader=[1, 2, 3]), caught[0].category.__name__
        (3, 'DeprecationWarning')
    """

    def decorate(func: F) -> F:
        if new not in inspect.signature(func).parameters:
            raise TypeError(f"{func.__qualname__} has no parameter {new!r} to rename {old_names} to")

        @functools.wraps(func)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            for old in old_names:
                if old in kwargs:
                    if new in kwargs:
                        raise TypeError(f"{func.__qualname__}() got both {new!r} and its old name {old!r}")
                    warnings.warn(f"{func.__qualname__}({old}=...) is deprecated; pass {new}=... instead",
                                  DeprecationWarning, stacklevel=2)
                    kwargs[new] = kwargs.pop(old)
            return func(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


__all__ = ["as_loader", "renamed_data_argument", "split_batch"]
