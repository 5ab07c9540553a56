"""Resources the API serves: names.py (names only), base.py (what a resource is), one module each, registry.py."""
