// Build manifest of kind v0.32.0 (the CLI; its node entrypoint and base files come from the same module).
module gim-netpol.local/images/kind

go 1.17

require sigs.k8s.io/kind v0.32.0
