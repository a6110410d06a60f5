"""Certificates and keys for the local control plane.

Everything here is a pure function of its arguments (plus fresh randomness and the
clock) and returns PEM bytes, so that the control plane can write them where the
binaries expect files and the tests can inspect them without a cluster.

Leaf certificates use ECDSA P-256: generating one takes microseconds, where RSA takes
tens of milliseconds, and every component of Kubernetes accepts it. The
service-account key stays RSA because that is what the brief and most tooling expect.
"""

from __future__ import annotations

import datetime
import ipaddress
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

# The API server allocates the first address of --service-cluster-ip-range to the
# `kubernetes` Service; in-cluster clients dial it, so it must be in the serving cert.
SERVICE_CLUSTER_IP_RANGE = "10.0.0.0/24"
KUBERNETES_SERVICE_IP = "10.0.0.1"

APISERVER_DNS_NAMES: tuple[str, ...] = (
    "localhost",
    "kubernetes",
    "kubernetes.default",
    "kubernetes.default.svc",
    "kubernetes.default.svc.cluster.local",
)
APISERVER_IPS: tuple[str, ...] = ("127.0.0.1", KUBERNETES_SERVICE_IP)

# Identities that the bootstrap RBAC policy of every release already binds.
ADMIN_USER, ADMIN_GROUPS = "torchyard-admin", ("system:masters",)
CONTROLLER_MANAGER_USER = "system:kube-controller-manager"
SCHEDULER_USER = "system:kube-scheduler"
KUBE_PROXY_USER = "system:kube-proxy"  # bound to system:node-proxier
NODES_GROUP = "system:nodes"
# The API server's identity towards kubelets (kubeadm's name); torchyard binds it to
# system:kubelet-api-admin for `kubectl logs` and `exec`.
APISERVER_KUBELET_CLIENT_USER = "kube-apiserver-kubelet-client"
COREDNS_USER = "torchyard:coredns"

# Backdate certificates so that a small clock skew between processes never makes a
# fresh certificate "not yet valid".
_BACKDATE = datetime.timedelta(hours=1)
_CA_LIFETIME = datetime.timedelta(days=3650)
_LEAF_LIFETIME = datetime.timedelta(days=365)


@dataclass(frozen=True)
class CertKey:
    """A certificate and its private key, both PEM encoded."""

    cert_pem: bytes
    key_pem: bytes

    @property
    def cert(self) -> x509.Certificate:
        return x509.load_pem_x509_certificate(self.cert_pem)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def _key_pem(key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _load_ca(ca: CertKey) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = serialization.load_pem_private_key(ca.key_pem, password=None)
    if not isinstance(key, ec.EllipticCurvePrivateKey):
        raise TypeError("the CA key must be an ECDSA key made by new_ca()")
    return ca.cert, key


def new_ca(common_name: str = "torchyard-local-ca") -> CertKey:
    """A self-signed CA that signs every other certificate of one local cluster."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(
            _key_usage(signs_certificates=True),
            critical=True,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return CertKey(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def _key_usage(signs_certificates: bool) -> x509.KeyUsage:
    """Digital signatures always; certificate and CRL signing only for the CA."""
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=signs_certificates,
        crl_sign=signs_certificates,
        encipher_only=False,
        decipher_only=False,
    )


def _leaf(
    ca: CertKey,
    subject: x509.Name,
    usages: Sequence[x509.ObjectIdentifier],
    san: x509.SubjectAlternativeName | None = None,
) -> CertKey:
    ca_cert, ca_key = _load_ca(ca)
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - _BACKDATE)
        .not_valid_after(now + _LEAF_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(
            # ECDSA keys only sign; key_encipherment is an RSA-only usage.
            _key_usage(signs_certificates=False),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage(list(usages)), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
            critical=False,
        )
    )
    if san is not None:
        builder = builder.add_extension(san, critical=False)
    cert = builder.sign(ca_key, hashes.SHA256())
    return CertKey(cert.public_bytes(serialization.Encoding.PEM), _key_pem(key))


def serving_cert(
    ca: CertKey,
    common_name: str,
    dns_names: Iterable[str] = (),
    ip_addresses: Iterable[str] = (),
    client: bool = False,
) -> CertKey:
    """A TLS server certificate valid for the given names and addresses (and, with
    `client`, as a client too: an etcd member's peer certificate)."""
    san = x509.SubjectAlternativeName(
        [x509.DNSName(n) for n in dns_names]
        + [x509.IPAddress(ipaddress.ip_address(ip)) for ip in ip_addresses]
    )
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    usages = [ExtendedKeyUsageOID.SERVER_AUTH]
    if client:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    return _leaf(ca, subject, usages, san)


def apiserver_ips(address: str) -> tuple[str, ...]:
    """The addresses the API server's certificate names: loopback, the `kubernetes`
    Service and the address it listens on (a node address pods can route to)."""
    return tuple(dict.fromkeys((*APISERVER_IPS, address)))


def apiserver_serving_cert(ca: CertKey, address: str = "127.0.0.1") -> CertKey:
    """The kube-apiserver's serving certificate: its addresses plus the in-cluster names."""
    return serving_cert(ca, "kube-apiserver", APISERVER_DNS_NAMES, apiserver_ips(address))


def client_cert(ca: CertKey, user: str, groups: Sequence[str] = ()) -> CertKey:
    """A client certificate that the API server reads as `user` in `groups`.

    The API server's x509 authenticator takes the user name from the subject's CN and
    the groups from its O attributes.
    """
    attrs = [x509.NameAttribute(NameOID.ORGANIZATION_NAME, g) for g in groups]
    attrs.append(x509.NameAttribute(NameOID.COMMON_NAME, user))
    return _leaf(ca, x509.Name(attrs), [ExtendedKeyUsageOID.CLIENT_AUTH])


def etcd_member_cert(etcd_ca: CertKey) -> CertKey:
    """etcd's certificate, for its clients and its peers, on loopback."""
    return serving_cert(etcd_ca, "etcd", ("localhost",), ("127.0.0.1",), client=True)


def etcd_client_cert(etcd_ca: CertKey) -> CertKey:
    """The API server's certificate towards etcd: the only client etcd accepts."""
    return client_cert(etcd_ca, "kube-apiserver-etcd-client")


def admin_cert(ca: CertKey) -> CertKey:
    return client_cert(ca, ADMIN_USER, ADMIN_GROUPS)


def controller_manager_cert(ca: CertKey) -> CertKey:
    return client_cert(ca, CONTROLLER_MANAGER_USER)


def scheduler_cert(ca: CertKey) -> CertKey:
    return client_cert(ca, SCHEDULER_USER)


def apiserver_kubelet_client_cert(ca: CertKey) -> CertKey:
    return client_cert(ca, APISERVER_KUBELET_CLIENT_USER)


def node_client_cert(ca: CertKey, node: str) -> CertKey:
    """A kubelet's identity: the Node authorizer reads `system:node:<name>`."""
    return client_cert(ca, f"system:node:{node}", (NODES_GROUP,))


def kubelet_serving_cert(ca: CertKey, node: str, address: str) -> CertKey:
    """The kubelet's serving certificate, for the address the API server dials."""
    return serving_cert(ca, f"system:node:{node}", (node,), (address,))


def service_account_key_pair() -> tuple[bytes, bytes]:
    """(private PEM, public PEM) of the key that signs and verifies service-account tokens."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return _key_pem(key), public
