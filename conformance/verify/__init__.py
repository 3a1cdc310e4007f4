"""``gim-netpol verify``: check a customer's cluster (live or from a snapshot) against the GIM contract.
May import ``netpol``, ``gim``, ``probes`` and ``suite``'s probe planning and retries; never ``commands``.

discovery  what the cluster holds (the Cluster model plus the raw objects the model leaves out)
inference  the GIM values the policies implement: mode, allowedNamespaces, extra policies
shadow     who needs to reach GIM (Ingress controllers, Prometheus) and who enforce would block
expected   the simulator's verdict of every flow into GIM, checked against the documented contract
analysis   all of the above in one result, and the exit status it implies
report_*   the terminal table, JSON, JUnit XML and HTML evidence
rbac       the permissions verify needs (deploy/rbac-verify.yaml) and the access review
live       the live run: canary, temporary namespaces, probes (needs a cluster)
"""
