"""The dataset resolver: identifiers (DOI, ARK, URN, URL, compact ids, drs://, keep:) mapped to the
sites that hold them, with each site's liveness; and launching work at the data's site."""
