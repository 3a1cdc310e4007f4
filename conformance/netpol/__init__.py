"""The NetworkPolicy engine: cluster model, selectors, policy compiler, simulator, snapshots, truth tables.
Imports only the standard library, PyYAML, jsonschema and ``conformance.errors``: no GIM, pytest or client."""
