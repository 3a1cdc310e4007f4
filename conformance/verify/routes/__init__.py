"""Routes into GIM other than Ingress, each traced to the pods that open the connections to GIM.

Every source here reads optional kinds: a cluster without them (or a snapshot that did not collect
them) simply has none, and ``kinds`` / ``discovery`` say so in the notes.

gateway_api  Gateway API routes -> Gateway -> GatewayClass controller -> data-plane pods
istio        Istio VirtualService -> Gateway selector -> ingress-gateway pods; sidecar-injected GIM
openshift    OpenShift Route -> openshift-ingress router pods (host network: the documented label)
traefik      Traefik IngressRoute (both API groups) -> Traefik pods running the CRD provider
"""

from __future__ import annotations

from conformance.verify.routes.gateway_api import gateway_api_needs
from conformance.verify.routes.istio import istio_needs
from conformance.verify.routes.openshift import openshift_needs
from conformance.verify.routes.traefik import traefik_needs

SOURCES = (gateway_api_needs, istio_needs, openshift_needs, traefik_needs)
