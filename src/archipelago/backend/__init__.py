"""The Backend interface (interface.py) and the local engine on the database (local.py)."""
