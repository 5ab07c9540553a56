"""The Backend interface and its implementations (DESIGN.md): routes call a Backend and never
know whether the object lives in this cluster's database or in a peer cluster."""
