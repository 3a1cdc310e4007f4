"""The nodes' ICMP rate limit on a rejecting CNI (model_icmp): what kube-router v2.1.0 showed live on kind,
a batch of denied connects from one client partly REFUSED, partly timing out."""

from __future__ import annotations

from collections import Counter

from conformance.backends.cni_profiles import parse_profile
from conformance.backends.model import ModelBackend
from conformance.backends.model_icmp import BURST, IcmpRateLimit
from conformance.netpol.probing import Outcome, Probe
from tests.model_scenarios import enforce_scenario


def test_a_bucket_holds_six_answers_and_refills_one_a_second() -> None:
    limit = IcmpRateLimit()
    assert [limit.allow("n1", "10.0.0.5", 0.0) for _ in range(BURST + 2)] == [True] * BURST + [False] * 2
    assert limit.allow("n2", "10.0.0.5", 0.0)  # another node's kernel has its own bucket
    assert limit.allow("n1", "10.0.0.6", 0.0)  # and so has another destination
    assert not limit.allow("n1", "10.0.0.5", 0.5)
    assert limit.allow("n1", "10.0.0.5", 1.6)
    assert [limit.allow("n1", "10.0.0.5", 100.0) for _ in range(BURST + 1)] == [True] * BURST + [False]


def _denied_probes(backend: ModelBackend) -> list[Probe]:
    """Every connect of the namespace not listed to GIM's pods, by pod IP: denied under enforce."""
    sc = enforce_scenario(backend)
    state = sc.state()
    client = next(p for p in state.pods if p.namespace.startswith("not-allowed"))
    targets = [p for p in state.pods if p.namespace == sc.topology.gim_namespace and p.ports]
    return [Probe(client.key, t.key, t.ip or "", port.port) for t in targets for port in t.ports]


def test_a_batch_of_denied_connects_past_the_burst_times_out_on_a_rejecting_cni() -> None:
    backend = ModelBackend(cni=parse_profile("rejects"))
    probes = _denied_probes(backend) * 4  # a batch with its confirmations, as the prober sends it
    backend.clock.sleep(5.0)  # the policies are programmed
    seen = backend.answer(probes, 2.0)
    per_node = Counter(
        backend.cluster.objects[("Pod", *p.target.split("/"))]["spec"]["nodeName"] for p in probes
    )
    assert len(per_node) == 2 and min(per_node.values()) > BURST
    refused = [o for o in seen if o.outcome is Outcome.REFUSED]
    timed_out = [o for o in seen if o.outcome is Outcome.BLOCKED]
    assert len(refused) == BURST * 2  # each destination node answers six, then falls silent
    assert len(timed_out) == len(probes) - len(refused)
    assert all("ICMP rate limit" in o.detail and o.latency_s >= 2.0 for o in timed_out)


def test_a_dropping_cni_is_not_rate_limited() -> None:
    backend = ModelBackend(cni=parse_profile("drops"))
    probes = _denied_probes(backend)
    backend.clock.sleep(5.0)
    assert {o.outcome for o in backend.answer(probes, 2.0)} == {Outcome.BLOCKED}
