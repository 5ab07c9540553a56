"""The executor: what runs on the host for one container, and the trust boundary between a tenant's
command and the host. It claims a sandbox user (sandbox.py), makes the container's mounts (mounts.py,
with collections read on demand through FUSE: fusefs.py), runs the command in the cluster's runtime
(runtimes.py: bubblewrap, Docker, Podman; cgroups.py for limits), and saves its outputs and logs
(outputs.py, logs.py) — opening nothing the request or the container named without checking it
(beneath.py). `run.py` holds the whole sequence; the server's lifecycle and the dispatchers live in
compute/."""
