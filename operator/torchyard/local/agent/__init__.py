"""The local node agent: a kubelet stand-in that runs pods as local processes.

See agent.py for the whole, pod.py for one pod, container.py for one container,
shim.py for how a process becomes a container, and launcher.py for starting it next
to the local control plane.
"""
