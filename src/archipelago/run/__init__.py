"""Composing and booting clusters, local federations and the demo; starting real service processes."""
