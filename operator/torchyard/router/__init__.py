"""The model router: one per model, in front of its versions' serving pods, splitting
requests by exact weights without a service mesh (torchyard router).

Replica ratios cannot split traffic exactly (2 pods and 20 % is 50 %), and kube-proxy
balances connections, not requests, so a keep-alive client sticks to one pod. The
router picks a version per request by smooth weighted round robin, which is exact to one
request in every `sum of weights` requests, and the operator pushes it the weights and
the ready endpoints of each version (PUT /_torchyard/routes), so it needs no RBAC.

No torch here: the router runs from the worker image but imports only aiohttp,
prometheus_client and the protocol's wire layer.
"""
