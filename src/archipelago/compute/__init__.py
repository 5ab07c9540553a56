"""Compute: the container lifecycle (lifecycle.py, reuse.py), the executor that runs one container
(executor.py, mounts.py, runtimes.py) and the dispatchers that put containers on the cluster's
compute (dispatch/)."""
