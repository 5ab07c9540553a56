"""The executor: what runs on the host for one container, and the trust boundary between a tenant's
command and the host. It claims a sandbox user (sandbox.py), makes the container's mounts (mounts.py,
with collections read on demand through FUSE: fusefs.py), runs the command in the cluster's runtime
(runtimes.py: bubblewrap, Docker, Podman; cgroups.py for limits), and saves its outputs and logs
(outputs.py, logs.py) — opening nothing the request or the container named without checking it
(beneath.py). `run.py` holds the whole sequence; the server's lifecycle and the dispatchers live in
compute/."""

# In a finished container's runtime_status: the bytes its mounts read, by the cluster that held them
# ({"z1111": n, ...}; this cluster's own data under its own ID). Counted by the executor (the FUSE
# view or staging), written in the update that ends the container, over whatever the container
# itself may have put there: runners read it (cwl/bounds.py) as this executor's word.
READ_BY_CLUSTER = "bytesReadByCluster"
