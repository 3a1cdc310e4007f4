"""``gim-netpol verify``: check a customer's cluster (live or from a snapshot) against the GIM contract.
May import ``netpol``, ``gim``, ``probes`` and ``suite``'s probe planning and retries; never ``commands``.

kinds      the API kinds verify reads, their groups and versions (every non-core kind optional)
discovery  what the cluster holds (the Cluster model plus the raw objects the model leaves out)
inference  the GIM values the policies implement, and the Helm release that installed them
shadow     who needs to reach GIM, from every evidence source (Ingress controllers, prometheus-operator)
evidence   what the evidence sources share: targets, Service ports to pods, the ``add`` callback
routes/    Gateway API, Istio, OpenShift Route and Traefik routes, traced to the pods behind them
scrapes    Prometheus by scrape annotations, Google Managed Prometheus
flowlogs   Hubble, Calico and CSV flow logs read into one record type (``--flows``)
observed   observed flows as evidence, resolved through the snapshot
expected   the simulator's verdict of every flow into GIM, checked against the documented contract
analysis   all of the above in one result, and the exit status it implies
report_*   the terminal table, JSON, JUnit XML and HTML evidence
placement  where a live run puts what it creates (namespaced: the probe namespaces; cluster-wide)
own        the namespaces of this tool's own runs, left out of the report
rbac       the permissions verify needs in each mode and the access review; rbac_manifest: as YAML
live       the live run: canary, CNI canaries, probes (needs a cluster)
"""
