"""The local control plane's certificates chain to its CA and say what they are for."""

import datetime
import ipaddress

import pytest
from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509 import verification
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from torchyard.local import pki


@pytest.fixture(scope="module")
def ca() -> pki.CertKey:
    return pki.new_ca()


def _verify_server(ca: pki.CertKey, leaf: pki.CertKey, name: verification.Subject) -> None:
    store = verification.Store([ca.cert])
    verifier = verification.PolicyBuilder().store(store).build_server_verifier(name)
    verifier.verify(leaf.cert, [])


def _verify_client(ca: pki.CertKey, leaf: pki.CertKey) -> None:
    # cryptography's client verifier follows the web PKI, which demands a SAN that
    # Kubernetes client certificates do not carry; check the signature and dates instead.
    leaf.cert.verify_directly_issued_by(ca.cert)
    now = datetime.datetime.now(datetime.UTC)
    assert leaf.cert.not_valid_before_utc < now < leaf.cert.not_valid_after_utc


def test_ca_is_a_self_signed_ca(ca):
    cert = ca.cert
    assert cert.issuer == cert.subject
    cert.verify_directly_issued_by(cert)
    assert cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.key_cert_sign and usage.crl_sign


@pytest.mark.parametrize(
    "name",
    [
        verification.IPAddress(ipaddress.ip_address("127.0.0.1")),
        verification.IPAddress(ipaddress.ip_address("10.0.0.1")),
        verification.DNSName("localhost"),
        verification.DNSName("kubernetes.default.svc"),
    ],
)
def test_apiserver_cert_verifies_for_every_name_a_client_dials(ca, name):
    _verify_server(ca, pki.apiserver_serving_cert(ca), name)


def test_apiserver_cert_is_refused_for_other_names(ca):
    with pytest.raises(verification.VerificationError):
        _verify_server(ca, pki.apiserver_serving_cert(ca), verification.DNSName("example.com"))


def test_apiserver_cert_is_a_server_leaf(ca):
    cert = pki.apiserver_serving_cert(ca).cert
    assert not cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.SERVER_AUTH]
    assert cert.extensions.get_extension_for_class(x509.KeyUsage).value.digital_signature


def test_a_leaf_from_another_ca_does_not_chain(ca):
    with pytest.raises(verification.VerificationError):
        _verify_server(
            ca, pki.apiserver_serving_cert(pki.new_ca()), verification.DNSName("localhost")
        )
    with pytest.raises(InvalidSignature):
        _verify_client(ca, pki.admin_cert(pki.new_ca()))


@pytest.mark.parametrize(
    ("make", "user", "groups"),
    [
        (pki.admin_cert, pki.ADMIN_USER, ["system:masters"]),
        (pki.controller_manager_cert, "system:kube-controller-manager", []),
        (pki.scheduler_cert, "system:kube-scheduler", []),
        (lambda ca: pki.client_cert(ca, "alice", ["dev", "ops"]), "alice", ["dev", "ops"]),
    ],
)
def test_client_certs_name_user_and_groups_as_kubernetes_reads_them(ca, make, user, groups):
    leaf = make(ca)
    _verify_client(ca, leaf)
    subject = leaf.cert.subject
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.COMMON_NAME)] == [user]
    assert [a.value for a in subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)] == groups
    eku = leaf.cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]


def test_certs_are_valid_now_despite_small_clock_skew(ca):
    cert = pki.admin_cert(ca).cert
    now = datetime.datetime.now(datetime.UTC)
    assert cert.not_valid_before_utc < now - datetime.timedelta(minutes=30)
    assert cert.not_valid_after_utc > now + datetime.timedelta(days=300)


def test_leaf_key_matches_its_certificate(ca):
    leaf = pki.client_cert(ca, "bob")
    key = serialization.load_pem_private_key(leaf.key_pem, password=None)
    assert key.public_key() == leaf.cert.public_key()


def test_service_account_key_pair_is_a_matching_rsa_pair():
    private_pem, public_pem = pki.service_account_key_pair()
    private = serialization.load_pem_private_key(private_pem, password=None)
    public = serialization.load_pem_public_key(public_pem)
    assert isinstance(private, rsa.RSAPrivateKey)
    assert private.key_size >= 2048
    assert private.public_key() == public
