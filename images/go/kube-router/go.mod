// Build manifest of kube-router v2.1.0 (CNI, routing and NetworkPolicy enforcer).
module gim-netpol.local/images/kube-router

go 1.21

require github.com/cloudnativelabs/kube-router/v2 v2.1.0
