"""Compute on the server's side: the container lifecycle (lifecycle.py, reuse.py) and the dispatchers
that put containers on the cluster's compute (dispatch/). What runs on the host for one container is
the executor package (executor/)."""
