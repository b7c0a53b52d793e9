"""Entry point for ``python -m repro_matrix``."""

from repro_matrix.cli import main

raise SystemExit(main())
