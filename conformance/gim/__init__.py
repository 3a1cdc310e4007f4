"""GIM's documented contract: Helm values, the reference rendering, the chart's manifests, promises per flow.
May import ``netpol`` (and ``suite.topology`` for the chart's workloads); never backends, probes or pytest."""
