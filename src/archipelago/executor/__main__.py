"""`python -m archipelago.executor CONTAINER_UUID` (or `--warm`): what the dispatchers start."""

from .run import main

raise SystemExit(main())
