"""The `archi` command."""
