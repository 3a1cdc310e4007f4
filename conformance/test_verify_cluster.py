"""``gim-netpol verify`` as a pytest entry point, for a cluster where GIM already runs.

    pytest conformance/test_verify_cluster.py --verify-namespace gitguardian --backend existing --context prod
    pytest conformance/test_verify_cluster.py --verify-namespace gitguardian --verify-snapshot snap.yaml

It creates nothing in the GIM namespace. Live, with the rights ``gim-netpol rbac --mode MODE`` prints:
``--verify-mode namespaced`` (the default, as ``gim-netpol verify``'s) probes from the probe namespaces
(``--verify-probe-namespaces``), ``cluster-wide`` from temporary namespaces the run owns, ``read-only``
creates and probes nothing.
"""

from __future__ import annotations

import pytest

from conformance.verify.analysis import analyse
from conformance.verify.discovery import load_view
from conformance.verify.report_text import render_text


def test_verify_cluster_conforms(netpol_settings):
    o = netpol_settings.options
    namespace = o["verify_namespace"]
    if not namespace:
        pytest.skip("verifies an existing GIM install: give --verify-namespace NS (see the README)")
    if o["verify_snapshot"]:
        analysis = analyse(load_view(o["verify_snapshot"]), namespace)
    elif o["backend"] == "existing":
        from conformance.suite.probe_namespaces import ProbeNamespaces
        from conformance.verify.live import LiveOptions, verify_live

        mode = o["verify_mode"]
        probe_namespaces = (
            ProbeNamespaces.parse(o["verify_probe_namespaces"]) if mode == "namespaced" else None
        )
        live = LiveOptions(
            kubeconfig=o["kubeconfig"],
            context=o["context"],
            timeout_s=o["probe_timeout"],
            image=o["probe_image"],
            deadline_s=o["converge_timeout"],
            probe_namespaces=probe_namespaces,
            probes=mode != "read-only",
        )
        analysis = verify_live(namespace, live)
    else:
        pytest.fail("--verify-namespace needs --verify-snapshot FILE or --backend existing", pytrace=False)
    assert analysis.exit_status == 0, render_text(analysis)
