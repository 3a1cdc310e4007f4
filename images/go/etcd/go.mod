// Build manifest of etcd v3.6.5, the version kubeadm v1.34.3 deploys (DefaultEtcdVersion 3.6.5-0).
module gim-netpol.local/images/etcd

go 1.24

require go.etcd.io/etcd/server/v3 v3.6.5
