"""The conformance catalogue, one module per area (the area is named by the scenario IDs)."""
