"""The nodes' ICMP rate limit, as a rejecting CNI meets it.

A CNI that rejects a denied connection (kube-router: iptables ``REJECT``) has the node's kernel answer with an
ICMP port-unreachable, and Linux rate-limits those per destination host: ``icmp_send`` asks
``inet_peer_xrlim_allow`` (net/ipv4/icmp.c, net/ipv4/inetpeer.c), a token bucket of
``net.ipv4.icmp_ratelimit`` (1000 ms: one message a second) holding at most ``XRLIM_BURST_FACTOR`` (6) of
them, for every type in ``net.ipv4.icmp_ratemask`` (destination-unreachable is). Past the burst the SYN is
still rejected but nothing answers it: the client's connect times out, as if dropped.

Seen live with kube-router v2.1.0 on kind (issue 22): a probe client whose batch holds ten denied connects
got six or so REFUSED at once and the others TIMEOUT, and which ones changed from round to round.
"""

from __future__ import annotations

from dataclasses import dataclass, field

RATE_S = 1.0  # net.ipv4.icmp_ratelimit = 1000 ms
BURST = 6  # XRLIM_BURST_FACTOR


@dataclass
class IcmpRateLimit:
    """One token bucket per (node, destination address), on the model's clock."""

    rate_s: float = RATE_S
    burst: int = BURST
    _buckets: dict[tuple[str, str], tuple[float, float]] = field(default_factory=dict)

    def allow(self, node: str, destination: str, now: float) -> bool:
        """Whether ``node`` may send one more ICMP error to ``destination`` at ``now`` (and spend it)."""
        tokens, then = self._buckets.get((node, destination), (float(self.burst), now))
        tokens = min(float(self.burst), tokens + (now - then) / self.rate_s)
        if tokens < 1.0:
            self._buckets[(node, destination)] = (tokens, now)
            return False
        self._buckets[(node, destination)] = (tokens - 1.0, now)
        return True
