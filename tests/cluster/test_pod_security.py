"""Pods built the way torchyard builds them are admitted under the restricted policy."""

from __future__ import annotations

import copy

import yaml

from torchyard.resources.pods import owner_labels, worker_pod


def _restricted(control_plane, namespace):
    control_plane.kubectl(
        "label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted"
    )


def _pod(namespace):
    return worker_pod(
        name="worker-0",
        namespace=namespace,
        labels=owner_labels("CompressionJob", "minilm-int8"),
        args=["workload", "compress"],
        env={"TORCHYARD_SPEC": "{}"},
    )


def test_worker_pod_is_admitted_in_a_restricted_namespace(control_plane, namespace):
    _restricted(control_plane, namespace)
    result = control_plane.kubectl(
        "apply", "-f", "-", input=yaml.safe_dump(_pod(namespace)), check=False
    )
    assert result.returncode == 0, result.stderr
    assert "violate" not in result.stderr  # no PodSecurity warning either


def test_a_pod_without_the_restricted_settings_is_refused(control_plane, namespace):
    # The control for the test above: the namespace really enforces the policy.
    _restricted(control_plane, namespace)
    pod = copy.deepcopy(_pod(namespace))
    del pod["spec"]["securityContext"]
    del pod["spec"]["containers"][0]["securityContext"]
    result = control_plane.kubectl("apply", "-f", "-", input=yaml.safe_dump(pod), check=False)
    assert result.returncode != 0
    assert "violates PodSecurity" in result.stderr
