"""TLS for the test servers: a throw-away CA and the certificates it issues, or one that signed itself."""

from __future__ import annotations

import ipaddress
import ssl
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import trustme
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

#: Where the TLS-only Dovecot listens: a loopback address other than the one
#: clients connect from (127.0.0.1). Dovecot counts a connection whose two ends
#: share an address as secure and accepts a plaintext login on it even with
#: ``ssl = required``; from another address it refuses, so a client that skips
#: TLS fails its test instead of passing unnoticed.
TLS_HOST = "127.0.0.2"


@dataclass(frozen=True)
class TlsFiles:
    """A throw-away certificate authority and a server certificate it issued, as PEM files."""

    ca_file: Path
    #: The server's certificate, then the CA's.
    cert_file: Path
    key_file: Path

    def server_context(self) -> ssl.SSLContext:
        """What a test server presents."""
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(self.cert_file, self.key_file)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts this CA only."""
        return ssl.create_default_context(cafile=str(self.ca_file))


def make_tls_files(directory: Path, *hosts: str) -> TlsFiles:
    """A new CA in ``directory`` and a certificate it issued for ``hosts`` (names or IP addresses)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = trustme.CA(organization_name="Corridor tests")
    issued = ca.issue_cert(*hosts)
    files = TlsFiles(directory / "ca.pem", directory / "server-chain.pem", directory / "server.key")
    ca.cert_pem.write_to_path(str(files.ca_file))
    files.cert_file.write_bytes(b"".join(blob.bytes() for blob in issued.cert_chain_pems))
    issued.private_key_pem.write_to_path(str(files.key_file))
    # Dovecot's login processes run as its own unprivileged users when we are
    # root; the master reads the files, but keep them readable all the same.
    for path in (files.ca_file, files.cert_file, files.key_file):
        path.chmod(0o644)
    directory.chmod(0o755)
    return files


def make_self_signed_tls_files(directory: Path, host: str) -> TlsFiles:
    """A certificate for ``host`` (an IP address) that signed itself, as small servers and appliances have.

    Its own ``ca_file``: trusting a self-signed server means naming its certificate.
    """
    directory.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"self-signed {host}")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5))
        .not_valid_after(now + timedelta(days=1))
        .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(host))]), critical=False)
        .sign(key, hashes.SHA256())
    )
    files = TlsFiles(directory / "self-signed.pem", directory / "self-signed.pem", directory / "self-signed.key")
    files.cert_file.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))
    files.key_file.write_bytes(
        key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    )
    return files


@pytest.fixture(scope="session")
def tls_files(tmp_path_factory: pytest.TempPathFactory) -> TlsFiles:
    """A CA and a certificate for the test servers' loopback addresses, made once per session."""
    return make_tls_files(tmp_path_factory.mktemp("tls"), TLS_HOST, "127.0.0.1", "localhost")


@pytest.fixture(scope="session")
def foreign_ca_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A CA that issued none of the test servers' certificates (as a mailbox's ``ca_file``: the wrong one)."""
    return make_tls_files(tmp_path_factory.mktemp("foreign-tls"), TLS_HOST).ca_file
