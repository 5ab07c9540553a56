"""The REST API (`/arvados/v1/…`), the discovery document and the exported config."""
