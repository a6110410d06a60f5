"""How the operator's API client reads refusals (Status bodies as the API server sends them)."""

from __future__ import annotations

from lightkube.core.exceptions import ApiError
from lightkube.models.meta_v1 import Status

from torchyard.controllers.client import namespace_gone


def _error(status: dict) -> ApiError:
    return ApiError(status=Status.from_dict({"kind": "Status", "apiVersion": "v1", **status}))


def test_creating_in_a_terminating_namespace_means_the_namespace_is_gone():
    terminating = _error(
        {
            "code": 403,
            "reason": "Forbidden",
            "message": 'pods "job-worker-0" is forbidden: unable to create new content in '
            "namespace team-a because it is being terminated",
            "details": {
                "name": "job-worker-0",
                "kind": "pods",
                "causes": [{"reason": "NamespaceTerminating", "message": "namespace team-a"}],
            },
        }
    )
    assert namespace_gone(terminating)


def test_creating_in_a_deleted_namespace_means_the_namespace_is_gone():
    missing = _error(
        {
            "code": 404,
            "reason": "NotFound",
            "message": 'namespaces "team-a" not found',
            "details": {"name": "team-a", "kind": "namespaces"},
        }
    )
    assert namespace_gone(missing)


def test_other_refusals_are_not_mistaken_for_a_gone_namespace():
    rbac = _error(
        {
            "code": 403,
            "reason": "Forbidden",
            "message": 'pods is forbidden: User "x" cannot create resource "pods"',
            "details": {"kind": "pods"},
        }
    )
    quota = _error(
        {"code": 403, "reason": "Forbidden", "message": "exceeded quota: compute-resources"}
    )
    missing_pod = _error({"code": 404, "reason": "NotFound", "details": {"kind": "pods"}})
    assert not any(namespace_gone(e) for e in (rbac, quota, missing_pod))
