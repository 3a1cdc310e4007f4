"""The pytest machinery: the plugin and its options, scenarios, topology, flows to probe, verdicts, controls.
May import every layer below it (netpol, gim, backends, probes); nothing below imports it but the CLI glue."""
