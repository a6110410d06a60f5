"""The local cluster: a real control plane built from pinned Go modules, on loopback."""
