"""The NetworkPolicy engine: cluster model, selectors, policy compiler, simulator, snapshots (YAML read with
go-yaml's alias guard), truth tables.
Imports only the standard library, PyYAML, jsonschema and ``conformance.errors``: no GIM, pytest or client."""
