"""GIM's components as the suite stands them in: their pod labels and the ports their pods declare.

The reference workloads follow GIM's topology docs; with ``--manifests`` the chart's own workloads
(``conformance.gim.chart``) replace them. Both the contract layer and the pytest machinery use these.
"""

from __future__ import annotations

from dataclasses import dataclass

from conformance.netpol.model import ContainerPort

PART_OF = {"app.kubernetes.io/name": "gitguardian", "app.kubernetes.io/instance": "gim"}
COMPONENT_LABEL = "app.kubernetes.io/component"


@dataclass(frozen=True)
class Workload:
    """A GIM component: its pod labels and the ports its pods declare."""

    name: str
    labels: dict[str, str]
    ports: tuple[ContainerPort, ...]
    serves: bool = True  # False for components that only open connections (workers, beat)


def _component(name: str, *ports: ContainerPort, serves: bool = True) -> Workload:
    return Workload(name, {**PART_OF, COMPONENT_LABEL: name}, tuple(ports), serves)


# The components of GIM's topology docs that receive traffic, with ports >= 1024 so that the stand-ins
# run as non-root under Pod Security "restricted".
REFERENCE_WORKLOADS: tuple[Workload, ...] = (
    _component("nginx", ContainerPort(8080, "TCP", "http"), ContainerPort(8443, "TCP", "https")),
    _component("internal-api", ContainerPort(8000, "TCP", "http")),
    _component("public-api", ContainerPort(8001, "TCP", "http")),
    _component("app-exporter", ContainerPort(9808, "TCP", "metrics")),
)
# GIM's workers only open connections: in the GIM namespace the client is one of them.
GIM_CLIENT = _component("worker", serves=False)
