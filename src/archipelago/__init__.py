"""Archipelago: a federated data-and-analysis platform speaking the Arvados wire formats."""

__version__ = "0.1.0"
