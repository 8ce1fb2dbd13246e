"""Certificates: a private certificate authority and server certificates it signs.

The local stack makes one CA per data folder (``<data dir>/tls``) and a certificate for Kafka's
partner listener (SASL_SSL); partners verify the broker with the CA certificate, which is public.
``portal tls`` makes the same files for docker-compose (Kafka, OpenSearch) into a folder of the
operator's choosing. Private keys are written with mode 0600 from their creation.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from portal_launcher.credentials import write_private

CA_CERT = "ca.pem"
CA_KEY = "ca-key.pem"
# A new server certificate is made when the one on disk has less than this left.
_RENEW_BEFORE = dt.timedelta(days=30)
_CA_LIFETIME = dt.timedelta(days=3650)
_SERVER_LIFETIME = dt.timedelta(days=825)


@dataclass(frozen=True)
class ServerFiles:
    """A server's PEM files: ``key_and_chain`` (private key, certificate, CA; 0600) is what
    Kafka's PEM key store reads; ``key`` and ``cert`` are the same, apart."""

    key_and_chain: Path
    key: Path
    cert: Path
    ca_cert: Path


_CA_KEY_USAGE = x509.KeyUsage(
    digital_signature=True,
    key_cert_sign=True,
    crl_sign=True,
    content_commitment=False,
    key_encipherment=False,
    data_encipherment=False,
    key_agreement=False,
    encipher_only=False,
    decipher_only=False,
)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _new_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: rsa.RSAPrivateKey) -> bytes:
    # PKCS#8, unencrypted: the form Kafka's and OpenSearch's PEM readers take without a password.
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _cert_pem(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def ensure_ca(folder: Path, name: str = "Portal local CA") -> tuple[x509.Certificate, Path]:
    """The CA of ``folder``, made once; returns its certificate and the certificate's path."""
    cert_path, key_path = folder / CA_CERT, folder / CA_KEY
    if cert_path.exists() and key_path.exists():
        return x509.load_pem_x509_certificate(cert_path.read_bytes()), cert_path
    key = _new_key()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    now = _now()
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _CA_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_CA_KEY_USAGE, critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    write_private(key_path, _key_pem(key))
    write_private(cert_path, _cert_pem(cert))
    cert_path.chmod(0o644)  # the CA certificate is public: partners verify the broker with it
    return cert, cert_path


def _san_entries(hostnames: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in dict.fromkeys(hostnames):
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def _is_current(cert_path: Path, ca: x509.Certificate, hostnames: list[str]) -> bool:
    try:
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
    except (FileNotFoundError, ValueError):
        return False
    if cert.issuer != ca.subject or cert.not_valid_after_utc - _now() < _RENEW_BEFORE:
        return False
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return set(san) == set(_san_entries(hostnames))


def ensure_server_cert(
    folder: Path, name: str, hostnames: list[str], *, client_auth: bool = False
) -> ServerFiles:
    """A certificate for ``name`` valid for ``hostnames`` (DNS names or IP addresses), signed by
    the CA of ``folder``; kept while current, made again when the names change or it expires."""
    if not hostnames:
        raise ValueError("a server certificate needs at least one host name")
    ca, ca_path = ensure_ca(folder)
    files = ServerFiles(
        key_and_chain=folder / f"{name}.pem",
        key=folder / f"{name}-key.pem",
        cert=folder / f"{name}-cert.pem",
        ca_cert=ca_path,
    )
    if files.key_and_chain.exists() and _is_current(files.cert, ca, hostnames):
        return files
    ca_key = serialization.load_pem_private_key((folder / CA_KEY).read_bytes(), password=None)
    assert isinstance(ca_key, rsa.RSAPrivateKey)
    key = _new_key()
    now = _now()
    usages = [ExtendedKeyUsageOID.SERVER_AUTH]
    if client_auth:
        usages.append(ExtendedKeyUsageOID.CLIENT_AUTH)
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hostnames[0])]))
        .issuer_name(ca.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + _SERVER_LIFETIME)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.SubjectAlternativeName(_san_entries(hostnames)), critical=False)
        .add_extension(x509.ExtendedKeyUsage(usages), critical=False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False
        )
        .sign(ca_key, hashes.SHA256())
    )
    key_pem, cert_pem = _key_pem(key), _cert_pem(cert)
    write_private(files.key, key_pem)
    write_private(files.cert, cert_pem)
    write_private(files.key_and_chain, key_pem + cert_pem + _cert_pem(ca))
    return files
