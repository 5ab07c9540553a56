"""Helpers the tests share: clusters, users, federations and raw keepstore requests."""
