"""torchattacks attacks: SAT, PGD-SAT, TRADES-SAT and LP-A3 (each a true ``torchattacks.Attack``)."""
