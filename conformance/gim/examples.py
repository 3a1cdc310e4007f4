"""The examples of the product documentation (gim-network-policies.md), as objects the tests deploy."""

from __future__ import annotations

from conformance.netpol.model import K8sObject

DOC_ALLOWED_NAMESPACES = ("ingress-nginx", "monitoring")


def smtp_egress_policy() -> K8sObject:
    """The documentation's extraPolicies example: egress to 10.0.0.0/24 on TCP 587 for every GIM pod."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "allow-external-smtp"},
        "spec": {
            "podSelector": {},
            "policyTypes": ["Egress"],
            "egress": [
                {"to": [{"ipBlock": {"cidr": "10.0.0.0/24"}}], "ports": [{"protocol": "TCP", "port": 587}]}
            ],
        },
    }


SMTP_RELAY = "10.0.0.25"  # an address inside the example's CIDR
SMTP_PORT = 587
