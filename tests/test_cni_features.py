"""CNI feature canaries: which NetworkPolicy features a policy uses, the canaries' truth tables, their
results on the model backend, and ``gim-netpol plan --cni-features``."""

from __future__ import annotations

from collections.abc import Sequence

import pytest
import yaml

from conformance.backends.model import ModelBackend
from conformance.commands.cli import main
from conformance.gim.render import render
from conformance.gim.values import NetpolValues
from conformance.netpol.features import FEATURES, features_used, policy_features
from conformance.netpol.k8s_schema import validate_network_policy
from conformance.netpol.probing import Observation, Outcome, Probe
from conformance.probes.agnhost import RUN_LABEL
from conformance.suite import cni_features as cf
from conformance.suite.cni_canaries import BY_FEATURE, CANARIES

FAST = {"probe_timeout_s": 2.0, "deadline_s": 30.0, "ready_timeout_s": 120.0, "retry_interval_s": 1.0}


def _policy(name: str, spec: dict, namespace: str = "gitguardian") -> dict:
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


ALLOW_WEB = _policy(
    "allow-web",
    {
        "podSelector": {"matchLabels": {"app.kubernetes.io/component": "nginx"}},
        "policyTypes": ["Ingress"],
        "ingress": [{"from": [{"namespaceSelector": {}}], "ports": [{"port": "http"}]}],
    },
)


def run(backend, canaries=CANARIES, layout: cf.Layout | None = None, needed=None) -> cf.CniFeatureReport:
    return cf.run_canaries(
        backend, canaries, layout or cf.Layout("abcdef12"), image="agnhost", needed=needed, **FAST
    )


# -- which features a policy uses ----------------------------------------------------------------------
def test_a_named_port_is_named_with_its_rule_and_policy():
    (use,) = [u for u in policy_features(ALLOW_WEB) if u.feature == "named-port"]
    assert use.describe() == "ingress rule 0 of gitguardian/allow-web uses a named port (http)"


def test_every_feature_of_a_rich_policy_is_found_in_its_rule():
    policy = _policy(
        "rich",
        {
            "podSelector": {"matchExpressions": [{"key": "app", "operator": "Exists"}]},
            "ingress": [
                {
                    "from": [
                        {"namespaceSelector": {"matchLabels": {"team": "a"}}, "podSelector": {}},
                        {"podSelector": {"matchLabels": {"role": "x"}}},
                    ],
                    "ports": [{"port": 8000, "endPort": 8080}, {"protocol": "UDP", "port": 9000}],
                },
                {"ports": [{"protocol": "SCTP", "port": 7000}]},
            ],
            "egress": [
                {"to": [{"ipBlock": {"cidr": "10.0.0.0/8", "except": ["10.1.0.0/16"]}}]},
                {"ports": [{"protocol": "UDP", "port": 53}]},
            ],
        },
    )
    found = {(u.feature, u.direction, u.rule) for u in policy_features(policy)}
    assert found >= {
        ("default-deny-ingress", None, None),
        ("default-deny-egress", None, None),
        ("service-ip", None, None),
        ("match-expressions", None, None),
        ("pod-and-namespace-selector", "ingress", 0),
        ("pod-selector", "ingress", 0),
        ("multiple-peers", "ingress", 0),
        ("end-port", "ingress", 0),
        ("udp", "ingress", 0),
        ("sctp", "ingress", 1),
        ("ip-block", "egress", 0),
        ("egress-dns", "egress", 1),
        ("udp", "egress", 1),
    }
    assert ("named-port", "ingress", 0) not in found and ("numbered-port", "ingress", 0) in found  # UDP 9000
    ip_block = next(u for u in policy_features(policy) if u.feature == "ip-block")
    assert ip_block.detail == "cidr 10.0.0.0/8 except 10.1.0.0/16"


def test_rules_of_a_direction_the_policy_does_not_isolate_use_nothing():
    policy = _policy(
        "ingress-only",
        {"podSelector": {}, "policyTypes": ["Ingress"], "egress": [{"ports": [{"port": "http"}]}]},
    )
    assert "named-port" not in features_used([policy])
    assert "default-deny-egress" not in features_used([policy])


def test_the_reference_rendering_needs_ingress_isolation_selectors_and_service_ip_only():
    values = NetpolValues(enabled=True, mode="enforce", allowed_namespaces=("monitoring",))
    assert set(features_used(render(values, "gitguardian"))) == {
        "default-deny-ingress",
        "pod-selector",
        "namespace-selector",
        "match-expressions",
        "service-ip",
    }


# -- the catalog ---------------------------------------------------------------------------------------
def test_one_canary_per_feature():
    assert [c.feature for c in CANARIES] == list(FEATURES)


@pytest.mark.parametrize("feature", list(FEATURES))
def test_each_canary_expects_some_flows_through_and_some_blocked(feature):
    backend = ModelBackend()
    layout = cf.Layout("abcdef12")
    canary = BY_FEATURE[feature]
    cf.plan_objects(layout, [canary], "agnhost", backend)
    backend.wait_ready(layout.namespaces(canary), 120)
    state = backend.state(layout.state_namespaces([canary]))
    flows = cf.canary_flows(layout, canary, state, layout.policies(canary, state))
    verdicts = {f.expected.allowed for f in flows}
    assert verdicts == {True, False}, [(f.probe, f.expected.reason) for f in flows]
    for policy in layout.policies(canary, state):
        validate_network_policy(policy, "canary", feature)  # what the canary applies, the API server accepts


# -- on the model backend ------------------------------------------------------------------------------
def test_every_canary_is_enforced_by_a_cni_that_implements_networkpolicy_and_nothing_is_left():
    backend = ModelBackend()
    report = run(backend)
    assert {f: r.status for f, r in report.results.items()} == {f: cf.ENFORCED for f in FEATURES}
    assert report.probes >= 2 * sum(len(c.checks) for c in CANARIES) - len(CANARIES)
    phases = backend.namespace_phases()  # deletion is asynchronous: Terminating for a while, then gone
    assert not [n for n, phase in phases.items() if n.startswith("cf-") and phase == "Active"]


def test_the_host_network_canary_is_not_checked_where_pod_security_forbids_it():
    report = run(ModelBackend(), [BY_FEATURE["node-traffic"]], cf.Layout("abcdef12", host_network=False))
    result = report.results["node-traffic"]
    assert result.status == cf.NOT_CHECKED and "host-network" in result.reason and report.probes == 0


class NoSctp(ModelBackend):
    """Nodes without the sctp kernel module (an external thing): an SCTP connect fails at once."""

    def answer(self, probes: Sequence[Probe], timeout_s: float) -> list[Observation]:
        return [
            Observation(o.probe, Outcome.ERROR, "OTHER: socket: protocol not supported", o.latency_s)
            if o.probe.protocol == "SCTP"
            else o
            for o in super().answer(probes, timeout_s)
        ]


def test_sctp_not_available_is_not_checked_and_says_why_and_the_others_still_run():
    report = run(NoSctp(), [BY_FEATURE["sctp"], BY_FEATURE["udp"]])
    sctp = report.results["sctp"]
    assert sctp.status == cf.NOT_CHECKED
    assert "sctp kernel module" in sctp.reason and "before any policy" in sctp.reason
    assert "observed error" in sctp.reason
    assert report.results["udp"].status == cf.ENFORCED


def test_needed_is_the_features_of_the_policies_all_is_every_canary_none_is_nothing():
    needed = cf.needed_features([ALLOW_WEB])
    assert [c.feature for c in cf.chosen("needed", needed)] == [
        "default-deny-ingress",
        "namespace-selector",
        "named-port",
        "service-ip",
    ]
    assert cf.chosen("all", needed) == list(CANARIES)
    assert cf.chosen("none", needed) == []


# -- gim-netpol plan --cni-features --------------------------------------------------------------------
def test_plan_prints_every_canary_object_with_the_run_label(capsys):
    assert main(["plan", "--cni-features"]) == 0
    out = capsys.readouterr().out
    docs = [d for d in yaml.safe_load_all(out) if d]
    namespaces = {d["metadata"]["name"] for d in docs if d["kind"] == "Namespace"}
    assert all(RUN_LABEL in d["metadata"]["labels"] for d in docs)
    assert all(f"# canary {f}:" in out for f in FEATURES)
    policies = [d for d in docs if d["kind"] == "NetworkPolicy"]
    assert len(policies) == len(CANARIES)
    assert {p["metadata"]["namespace"] for p in policies} <= namespaces
    for p in policies:
        validate_network_policy(p, "plan", p["metadata"]["name"])


def test_plan_needed_lists_the_canaries_of_the_values_extra_policies(tmp_path, capsys):
    values = tmp_path / "values.yaml"
    values.write_text(
        yaml.safe_dump(
            {
                "networkPolicy": {
                    "enabled": True,
                    "mode": "enforce",
                    "allowedNamespaces": ["monitoring"],
                    "extraPolicies": [
                        {k: v for k, v in ALLOW_WEB.items() if k != "metadata"}
                        | {"metadata": {"name": "allow-web"}}
                    ],
                }
            }
        )
    )
    assert main(["plan", "--values", str(values), "--cni-features", "needed", "--matrix"]) == 0
    out = capsys.readouterr().out
    assert "# canary named-port:" in out and "# canary end-port:" not in out
    assert "# needed: ingress rule 0 of gitguardian/allow-web uses a named port (http)" in out
    assert "canary named-port, expected: via pod IP" in out


def test_readme_tables_every_canary():
    from pathlib import Path

    from conformance.suite.cni_canaries import markdown_table

    assert markdown_table() in (Path(__file__).resolve().parents[1] / "README.md").read_text()


class RefusesHostNetwork(ModelBackend):
    """An admission policy (an external thing) that refuses host-network pods."""

    def apply(self, objects) -> None:
        if any(o["kind"] == "Pod" and o["spec"].get("hostNetwork") for o in objects):
            raise RuntimeError('admission webhook "no-host-network" denied the request')
        super().apply(objects)


def test_a_canary_refused_by_admission_is_not_checked_and_the_others_run():
    report = run(RefusesHostNetwork(), [BY_FEATURE["node-traffic"], BY_FEATURE["numbered-port"]])
    node = report.results["node-traffic"]
    assert node.status == cf.NOT_CHECKED and "no-host-network" in node.reason
    assert report.results["numbered-port"].status == cf.ENFORCED
