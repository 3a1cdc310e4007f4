"""Live probing: agnhost pod manifests, the parallel exec prober, held connections.
May import ``netpol`` (``netpol.probing``: the probe vocabulary) and the kubernetes client; not backends."""
