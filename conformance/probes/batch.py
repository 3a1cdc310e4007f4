"""Batched probes: one exec per client pod per round, every connect of that client run at once inside it.

A live exec costs an API round trip (API server -> kubelet -> runtime) whatever it runs, and a dropped
connect costs its whole timeout: a round of 40 single-probe execs, 16 at a time, pays three waves of
timeouts. One exec per client, whose connects all run concurrently, pays one round trip and one timeout.

The exec runs ``/bin/sh -c SCRIPT sh SPEC...``: the agnhost image is Alpine with busybox's sh (and bash,
which its Dockerfile installs with apk; kubernetes test/images/agnhost/Dockerfile at the 2.52 tag). Each
SPEC is ``INDEX|CONFIRM|HOST:PORT|PROTOCOL``; the script starts one background job per spec, each
running ``/agnhost connect`` exactly as a single probe does, and printing one line per sample::

    INDEX SAMPLE EXIT_CODE DETAIL

where DETAIL is agnhost's output folded onto one line. A spec with CONFIRM=1 (a flow expected blocked)
whose first sample did not connect is sampled a second time in the same exec, once every first sample
is in, unless a spec to confirm connected (``netpol.probing.to_confirm``): a block is still seen twice
in a row, without another round. The lines are shorter than PIPE_BUF (4096 bytes), so
the jobs' writes to the shared stdout pipe never interleave (POSIX write(2) atomicity for pipes).

An image without ``/bin/sh`` cannot run a batch: the prober falls back to one exec per probe for that
pod (``agnhost connect`` alone), which needs nothing but agnhost.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from conformance.netpol.probing import Observation, Outcome, Probe
from conformance.probes.agnhost import classify, connect_command

SHELL = "/bin/sh"
MAX_DETAIL = 300  # characters of agnhost's output kept per sample (keeps each line under PIPE_BUF)

# "$@" are the specs, split with parameter expansions (no here-document: the probe pods' root filesystem
# is read-only, and a shell may back a here-document with a temporary file). The first samples run at
# once; a command substitution waits for its background jobs, so $first holds all their lines. Then,
# unless a spec to confirm connected (the CNI is still programming: netpol.probing.to_confirm), the
# specs to confirm whose first sample did not connect are sampled again, at once.
SCRIPT = r"""
sample() {
  out=$(/agnhost connect "$3" --timeout="$TIMEOUT" --protocol="$4" 2>&1)
  rc=$?
  printf '%s %s %s %s\n' "$1" "$2" "$rc" "$(printf '%s' "$out" | tr '\n' ' ' | cut -c1-MAXD)"
}
spec() {
  idx=${1%%|*}; rest=${1#*|}; confirm=${rest%%|*}; rest=${rest#*|}; target=${rest%%|*}; proto=${rest#*|}
}
first=$(for s in "$@"; do spec "$s"; sample "$idx" 1 "$target" "$proto" & done; wait)
printf '%s\n' "$first"
again=""
for s in "$@"; do
  spec "$s"
  [ "$confirm" = 1 ] || continue
  case "$(printf '%s\n' "$first" | grep "^$idx 1 ")" in
    "$idx 1 0 "*) exit 0 ;;
    *) again="$again $s" ;;
  esac
done
for s in $again; do spec "$s"; sample "$idx" 2 "$target" "$proto" & done
wait
""".replace("MAXD", str(MAX_DETAIL))


@dataclass(frozen=True)
class BatchItem:
    probe: Probe
    confirm: bool  # sample again at once when the first sample does not connect


def batch_command(items: Sequence[BatchItem], timeout_s: float, agnhost: str = "/agnhost") -> list[str]:
    """The exec command that runs every item's ``agnhost connect`` at once in one client pod (``agnhost``:
    where the binary is, /agnhost in the image)."""
    specs = []
    timeout = ""
    for i, item in enumerate(items):
        # The arguments a single probe passes to agnhost connect (target, --timeout, --protocol).
        argv = connect_command(item.probe.host, item.probe.port, item.probe.protocol, timeout_s)
        target, timeout, proto = argv[2], argv[3].split("=", 1)[1], argv[4].split("=", 1)[1]
        specs.append(f"{i}|{int(item.confirm)}|{target}|{proto}")
    script = SCRIPT.replace("/agnhost connect", f"{agnhost} connect")
    return [SHELL, "-c", f"TIMEOUT={timeout}\n{script}", "sh", *specs]


def parse_batch_output(items: Sequence[BatchItem], stdout: str, latency_s: float) -> list[list[Observation]]:
    """The samples of every item, in the items' order, from the script's lines. An item with no line
    (the job was killed, the output was cut) gets one ERROR sample saying so: never a block."""
    samples: dict[int, dict[int, Observation]] = {i: {} for i in range(len(items))}
    for line in stdout.splitlines():
        parts = line.split(" ", 3)
        if len(parts) < 3 or not (parts[0].isdigit() and parts[1].isdigit()):
            continue
        index, sample = int(parts[0]), int(parts[1])
        if index not in samples:
            continue
        try:
            code: int | None = int(parts[2])
        except ValueError:
            code = None
        detail = parts[3] if len(parts) > 3 else ""
        # agnhost writes its verdict to stderr; the script merged it into the detail.
        outcome, text = classify(code, "", detail)
        samples[index][sample] = Observation(items[index].probe, outcome, text, latency_s)
    out: list[list[Observation]] = []
    for i, item in enumerate(items):
        got = [samples[i][n] for n in sorted(samples[i])]
        if not got:
            got = [Observation(item.probe, Outcome.ERROR, "no result line from the batch exec", latency_s)]
        out.append(got)
    return out


def shell_missing(detail: str) -> bool:
    """Whether an exec failed because the image has no /bin/sh (the runtime could not start it)."""
    text = detail.lower()
    return SHELL in text and ("no such file" in text or "not found" in text)
