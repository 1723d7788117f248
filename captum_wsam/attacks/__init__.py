"""torchattacks attacks: SAT, PGD-SAT, TRADES-SAT and LP-A3 (each a true ``torchattacks.Attack``).

The pure maths lives in :mod:`captum_wsam.attacks.functional`.
"""

from . import functional
from .lpa3 import LPA3
from .sat import PGDSAT, SAT, TRADESSAT, SATParams

__all__ = ["LPA3", "PGDSAT", "SAT", "TRADESSAT", "SATParams", "functional"]
