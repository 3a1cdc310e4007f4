"""The model's NetworkPolicy enforcer: Calico as its operator runs it on the suite's kind cluster, so that
the model's backend starts as the kind backend does, by waiting for the enforcer's pods.

What the operator deploys for an ``Installation`` (Calico v3.31.2, tigera-operator v1.40.2; docs.tigera.io
"Kind multi-node install"): in ``tigera-operator`` the operator's Deployment; in ``calico-system`` the
calico-node DaemonSet (one pod a node, host network), the calico-typha Deployment (host network) and the
calico-kube-controllers Deployment. The images are ``quay.io/tigera/operator`` and ``quay.io/calico/*``
(the release's ``releases.json``). The containers keep the default ``terminationMessagePolicy``
(``File``): a crash leaves its reason in the container's log, not in the pod's status. The CSI driver
and the init containers are left out: the suite does not depend on them.

Without faults every pod is Ready at once (an enforcer installed before the run); ``enforcer-crash``
(model_faults) makes them fail as model_pods describes.
"""

from __future__ import annotations

from collections.abc import Sequence

from conformance.netpol.model import K8sObject

CALICO_VERSION = "v3.31.2"
OPERATOR_VERSION = "v1.40.2"
# The enforcer's pods are Ready: what the model's backend start waits for (kind: every tigerastatus
# Available, read from the same pods).
WHAT = "every Calico pod Ready"


def _namespace(name: str) -> K8sObject:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def _pod(namespace: str, name: str, app: str, image: str, node: str, host_network: bool) -> K8sObject:
    spec: dict = {
        "nodeName": node,
        "containers": [{"name": app, "image": image, "imagePullPolicy": "IfNotPresent"}],
    }
    if host_network:
        spec["hostNetwork"] = True
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"namespace": namespace, "name": name, "labels": {"k8s-app": app}},
        "spec": spec,
    }


def calico_objects(nodes: Sequence[str]) -> list[K8sObject]:
    """The namespaces and pods of Calico on ``nodes`` (pod names with the suffixes the controllers draw)."""
    calico = f"quay.io/calico/{{}}:{CALICO_VERSION}"
    suffixes = ("7k4xq", "m2p9z", "c8w5d", "t6j3n")
    return [
        _namespace("tigera-operator"),
        _namespace("calico-system"),
        _pod(
            "tigera-operator",
            "tigera-operator-7d8c9b6f5-vx4mn",
            "tigera-operator",
            f"quay.io/tigera/operator:{OPERATOR_VERSION}",
            nodes[0],
            True,
        ),
        *(
            _pod(
                "calico-system",
                f"calico-node-{suffixes[i]}" if i < len(suffixes) else f"calico-node-{i}",
                "calico-node",
                calico.format("node"),
                node,
                True,
            )
            for i, node in enumerate(nodes)
        ),
        _pod(
            "calico-system",
            "calico-typha-6d9f7c5b4-x8kqv",
            "calico-typha",
            calico.format("typha"),
            nodes[0],
            True,
        ),
        _pod(
            "calico-system",
            "calico-kube-controllers-5c8b7d9f6-q2wzr",
            "calico-kube-controllers",
            calico.format("kube-controllers"),
            nodes[-1],
            False,
        ),
    ]
