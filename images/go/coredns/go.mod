// Build manifest of CoreDNS v1.12.1, the version kubeadm v1.34.3 deploys (CoreDNSVersion).
module gim-netpol.local/images/coredns

go 1.23.0

require github.com/coredns/coredns v1.12.1
