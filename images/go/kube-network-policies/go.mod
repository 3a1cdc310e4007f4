// Build manifest of kube-network-policies v0.8.0 (kindnet's NetworkPolicy enforcer).
module gim-netpol.local/images/kube-network-policies

go 1.23.0

require sigs.k8s.io/kube-network-policies v0.8.0
