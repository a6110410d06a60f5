"""Kubeconfig files for the local control plane's users.

Credentials are embedded (`*-data` fields) so that a kubeconfig stays valid when it is
copied elsewhere, and files are written owner-only because they carry private keys.
"""

from __future__ import annotations

import base64
import os
import re
from pathlib import Path
from typing import Any

import yaml

from torchyard.local.pki import CertKey

CLUSTER = "torchyard-local"


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def safe_name(name: str) -> str:
    """A file-name-safe spelling of a user or service-account name."""
    return re.sub(r"[^A-Za-z0-9_.-]", "_", name)


def render(
    server: str,
    ca_pem: bytes,
    user: str,
    client: CertKey | None = None,
    token: str | None = None,
) -> dict[str, Any]:
    if (client is None) == (token is None):
        raise ValueError("a kubeconfig needs exactly one of a client certificate or a token")
    credentials: dict[str, str] = (
        {"client-certificate-data": _b64(client.cert_pem), "client-key-data": _b64(client.key_pem)}
        if client is not None
        else {"token": token or ""}
    )
    return {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [
            {
                "name": CLUSTER,
                "cluster": {"server": server, "certificate-authority-data": _b64(ca_pem)},
            }
        ],
        "users": [{"name": user, "user": credentials}],
        "contexts": [{"name": user, "context": {"cluster": CLUSTER, "user": user}}],
        "current-context": user,
    }


def write(path: Path, config: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    # Create with 0600 from the start, so the key is never briefly world-readable.
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as f:
        yaml.safe_dump(config, f, sort_keys=False)
    return path
