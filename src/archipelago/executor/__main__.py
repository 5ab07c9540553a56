"""`python -m archipelago.executor CONTAINER_UUID` (or `--warm`): what the dispatchers start.

A warm executor does its imports (and starts its FUSE process) at a low priority, so that getting
ready for the next container takes no CPU from the containers running now; it returns to normal
priority when it is handed its container (only where it can: as root)."""

import os
import sys

if sys.argv[1:2] == ["--warm"] and os.geteuid() == 0:
    os.nice(10)

from .run import main  # after the priority is lowered

raise SystemExit(main())
