"""Dispatchers: take queued containers and run them on the cluster's compute. loop.py is what every
dispatcher shares (finding work, locking, cancelling, cleaning up); a backend (local.py, slurm.py)
only starts, watches and stops one container's executor."""
