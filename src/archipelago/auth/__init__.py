"""Identity: API tokens and permissions."""
