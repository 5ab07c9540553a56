"""Gateways: Keep services that serve blocks of data held elsewhere (a directory, later S3 and
HTTP objects) read in place, found by the `+K@<service uuid>` hints of the blocks they serve."""
