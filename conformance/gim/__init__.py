"""GIM's documented contract: Helm values, the reference rendering, the chart's manifests, promises per flow.
May import ``netpol`` only; never suite, backends, probes or pytest (``workloads`` holds GIM's
components, which the suite's topology stands in)."""
