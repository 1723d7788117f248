"""``python -m captum_wsam demo`` runs the same command line as the ``captum-wsam`` script."""

from .cli import main

raise SystemExit(main())
