"""Kubeconfigs for the local control plane embed their credentials and stay private."""

import base64
import stat

import pytest
import yaml

from torchyard.local import kubeconfig, pki


def test_client_cert_kubeconfig_embeds_ca_and_credentials(tmp_path):
    ca = pki.new_ca()
    client = pki.client_cert(ca, "alice", ["dev"])
    config = kubeconfig.render("https://127.0.0.1:6443", ca.cert_pem, "alice", client=client)
    path = kubeconfig.write(tmp_path / "k" / "alice.kubeconfig", config)
    loaded = yaml.safe_load(path.read_text())
    assert loaded["current-context"] == "alice"
    cluster = loaded["clusters"][0]["cluster"]
    assert cluster["server"] == "https://127.0.0.1:6443"
    assert base64.b64decode(cluster["certificate-authority-data"]) == ca.cert_pem
    user = loaded["users"][0]["user"]
    assert base64.b64decode(user["client-key-data"]) == client.key_pem
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_token_kubeconfig(tmp_path):
    config = kubeconfig.render("https://x", b"ca", "sa", token="abc")
    assert config["users"][0]["user"] == {"token": "abc"}


def test_exactly_one_credential():
    with pytest.raises(ValueError):
        kubeconfig.render("https://x", b"ca", "nobody")


def test_safe_name():
    assert kubeconfig.safe_name("system:serviceaccount:ns/a b") == "system_serviceaccount_ns_a_b"
