"""A throwaway certificate authority for loopback servers (the emulator, the reference app,
and test servers with deliberately bad certificates).

Each run makes its own CA, so nothing is trusted beyond the run and TLS verification never
has to be switched off: clients are told to trust the CA file instead.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import ssl
import tempfile
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID


def _key() -> ec.EllipticCurvePrivateKey:
    # P-256: fast to generate (milliseconds), accepted by every TLS stack we talk to.
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


@dataclass(frozen=True)
class ServerCert:
    cert_pem: bytes
    key_pem: bytes
    cert_path: Path
    key_path: Path

    def server_context(
        self, *, alpn: tuple[str, ...] = (), minimum: ssl.TLSVersion | None = None
    ) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(str(self.cert_path), str(self.key_path))
        if minimum is not None:
            context.minimum_version = minimum
        if alpn:
            context.set_alpn_protocols(list(alpn))
        return context


class LocalCA:
    """A CA whose certificate lives in ``ca_path``; it issues server certificates on demand."""

    def __init__(
        self, directory: Path | None = None, name: str = "scim-readiness local CA"
    ) -> None:
        if directory is None:
            # A throwaway CA (its key included) must not outlive the process, however the
            # process ends short of a kill: Ctrl-C and a normal exit both run atexit.
            import atexit
            import shutil

            directory = Path(tempfile.mkdtemp(prefix="scim-readiness-ca-"))
            atexit.register(shutil.rmtree, directory, ignore_errors=True)
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self._key = _key()
        now = dt.datetime.now(dt.UTC)
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self._name = subject
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self._key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(minutes=5))
            .not_valid_after(now + dt.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(
                    digital_signature=True,
                    content_commitment=False,
                    key_encipherment=False,
                    data_encipherment=False,
                    key_agreement=False,
                    key_cert_sign=True,
                    crl_sign=True,
                    encipher_only=False,
                    decipher_only=False,
                ),
                critical=True,
            )
            .add_extension(
                x509.SubjectKeyIdentifier.from_public_key(self._key.public_key()), critical=False
            )
            .sign(self._key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM)
        self.ca_path = self.directory / "ca.pem"
        self.ca_path.write_bytes(self.cert_pem)
        self._issued = 0

    def issue(
        self,
        *hosts: str,
        valid_for: dt.timedelta = dt.timedelta(days=90),
        not_before: dt.datetime | None = None,
    ) -> ServerCert:
        """A server certificate for ``hosts`` (DNS names or IP addresses).

        ``valid_for`` may be short (a certificate expiring in 3 days) and ``not_before`` in
        the past together with a negative ``valid_for`` gives an expired one.
        """
        hosts = hosts or ("localhost", "127.0.0.1")
        key = _key()
        start = not_before or (dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5))
        names: list[x509.GeneralName] = []
        for host in hosts:
            try:
                names.append(x509.IPAddress(ipaddress.ip_address(host)))
            except ValueError:
                names.append(x509.DNSName(host))
        cert = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])]))
            .issuer_name(self._name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + valid_for)
            .add_extension(x509.SubjectAlternativeName(names), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(
                x509.AuthorityKeyIdentifier.from_issuer_public_key(self._key.public_key()),
                critical=False,
            )
            .sign(self._key, hashes.SHA256())
        )
        self._issued += 1
        cert_pem = cert.public_bytes(serialization.Encoding.PEM)
        key_pem = _pem_key(key)
        cert_path = self.directory / f"server-{self._issued}.pem"
        key_path = self.directory / f"server-{self._issued}.key"
        cert_path.write_bytes(cert_pem)
        key_path.write_bytes(key_pem)
        key_path.chmod(0o600)
        return ServerCert(cert_pem, key_pem, cert_path, key_path)

    def client_context(self) -> ssl.SSLContext:
        """A client context trusting this CA only (for tests)."""
        return ssl.create_default_context(cafile=str(self.ca_path))
