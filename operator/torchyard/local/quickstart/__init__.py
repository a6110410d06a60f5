"""`torchyard local quickstart`: the mission on the local cluster, shown as it happens.

observe (what a person follows of an object), timeline (what happened, in order), report
(the closing summary) and chart (the rollout drawn) are pure; run drives the cluster.
"""
