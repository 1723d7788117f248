"""train.functional: each loss against its formula written out in float64; LP-A3's selection against the official
code's rule; the moved names still reachable from attacks.functional with a DeprecationWarning."""

from __future__ import annotations

import math

import pytest
import torch

from captum_wsam.train import functional as TF
from captum_wsam.train.memory import SaliencyCache, SelectionMemory


@pytest.fixture
def logits() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return (torch.randn(5, 4, generator=g, dtype=torch.float64), torch.randn(5, 4, generator=g, dtype=torch.float64),
            torch.tensor([0, 3, 1, 2, 3]))


def ce(z: torch.Tensor, y: torch.Tensor) -> torch.Tensor:  # -log softmax(z)_y, per sample, from the definition
    return torch.stack([math.log(sum(math.exp(v) for v in row.tolist())) - row[int(t)] for row, t in zip(z, y)])


def test_losses_equal_their_formulas(logits):
    clean, adv, labels = logits
    torch.testing.assert_close(TF.adversarial_loss(adv, labels), ce(adv, labels).mean())
    torch.testing.assert_close(TF.mixed_loss(clean, adv, labels, 0.3),
                               0.3 * ce(clean, labels).mean() + 0.7 * ce(adv, labels).mean())
    p, q = clean.softmax(1), adv.softmax(1)
    kl = (p * (p / q).log()).sum(1)
    torch.testing.assert_close(TF.trades_loss(clean, adv, labels, 6.0), (ce(clean, labels) + 6.0 * kl).mean())
    confidence = torch.tensor([0.95, 0.2, 0.9, 0.89, 1.0], dtype=torch.float64)
    mask = torch.tensor([1.0, 0.0, 1.0, 0.0, 1.0], dtype=torch.float64)
    torch.testing.assert_close(TF.lpa3_loss(adv, labels, confidence), (ce(adv, labels) * mask).sum() / 5)
    torch.testing.assert_close(TF.lpa3_loss(adv, labels, confidence, 0.0), ce(adv, labels).mean())


@pytest.mark.parametrize(("n", "ratio"), [(48, 0.25), (32, 0.3), (10, 0.1), (7, 1.0), (50, 0.9)])
def test_instability_threshold_selects_as_the_official_code(n, ratio):
    instability = torch.rand(n, generator=torch.Generator().manual_seed(n), dtype=torch.float64)
    mem_tc = -instability  # the official memory: mem_tc = 0.01 * mem_tc - 0.99 * at
    _, indices = torch.sort(mem_tc, descending=True)
    threshold = mem_tc[indices[int((1 - ratio) * n)] if int((1 - ratio) * n) < n else indices[-1]]
    official = mem_tc < threshold
    ours = instability > TF.instability_threshold(instability, ratio)
    assert torch.equal(ours, official) and int(ours.sum()) == n - min(int((1 - ratio) * n), n - 1) - 1


def test_selection_memory_ranks_as_the_official_mean_kl_memory():
    # official: at = mean_k p (log p - log m), memory initialised to 1.01 and stored negated; ours: KL from uniform
    g = torch.Generator().manual_seed(3)
    memory = SelectionMemory(ratio=0.3, momentum=0.01)
    mem_logits, mem_tc = torch.ones(20, 5, dtype=torch.float64) + 0.01, torch.zeros(20, dtype=torch.float64)
    for _ in range(3):
        memory.start_epoch()
        for index in torch.arange(20).split(5):
            probs = torch.randn(5, 5, generator=g, dtype=torch.float64).mul(3).softmax(1)
            memory.update(index, probs, size=20)
            at = torch.nn.functional.kl_div(mem_logits[index].log(), probs, reduction="none").mean(dim=1)
            mem_tc[index] = 0.01 * mem_tc[index] - 0.99 * at
            mem_logits[index] = probs
    assert torch.equal(memory.instability.argsort(), (-mem_tc).argsort())
    with pytest.raises(ValueError, match=r"info\['index'\] must lie in \[0, 19\]"):
        memory.update(torch.tensor([20]), torch.full((1, 5), 0.2, dtype=torch.float64), size=20)


def test_saliency_cache_validation():
    cache = SaliencyCache("log_prob")
    cache.store(torch.tensor([0, 2]), torch.randn(2, 3, 4, 4), size=3)
    state = cache.state_dict()
    cache.validate_state(state, 3)
    with pytest.raises(ValueError, match="2 rows for a data set of 3"):
        cache.validate_state({"maps": state["maps"][:2], "valid": state["valid"][:2]}, 3)
    with pytest.raises(ValueError, match="int8 maps"):
        cache.validate_state({"maps": state["maps"].float(), "valid": state["valid"]}, 3)


@pytest.mark.parametrize("name", ["prediction_instability", "ema_update", "selection_threshold"])
def test_moved_names_still_work_from_attacks_functional(name):
    from captum_wsam.attacks import functional as AF

    with pytest.warns(DeprecationWarning, match=f"train.functional.{name}"):
        moved = getattr(AF, name)
    assert moved is getattr(TF, name)
    with pytest.raises(AttributeError):
        AF.not_a_function  # noqa: B018
