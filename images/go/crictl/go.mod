// Build manifest of crictl v1.34.0 (cri-tools), kind's node debugging tool.
module gim-netpol.local/images/crictl

go 1.24.1

require sigs.k8s.io/cri-tools v1.34.0
