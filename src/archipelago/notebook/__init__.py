"""Notebooks next to the data: a JupyterLab container at a cluster with datasets mounted read-only
and a writable scratch, reached only through that cluster's API server with its user's token
(api/notebook.py), stopped after an idle timeout, its notebooks saved as its output collection.

    from archipelago.notebook import start, stop
    session = start(client, "z2222", {"/data": "<PDH or collection UUID>"})   # -> NotebookSession
"""

from .session import NotebookSession, proxy_prefix, start, stop

__all__ = ["NotebookSession", "proxy_prefix", "start", "stop"]
