"""The container node: the upstream kubelet and kube-proxy, containerd and runc, a CNI
bridge and CoreDNS, started next to the local control plane (`local up --node=containers`).

Unlike the node agent, pods run in real containers: cgroup limits, seccomp
RuntimeDefault, their own root file systems from images, Service routing by kube-proxy
(iptables) and cluster DNS.
"""
