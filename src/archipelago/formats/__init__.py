"""Wire formats shared with Arvados: locators, manifests, signatures, tokens. Pure: no I/O."""
