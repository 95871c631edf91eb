"""TLS for local clusters, as CNPG gives every cluster: a CA of the cluster's own and a server certificate
for its services' names, so clients can verify the server (`sslmode=verify-ca`)."""

from __future__ import annotations

import datetime as dt
import ipaddress
import pwd
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from shared.platforms.local import processes

VALID_DAYS = 3650


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


def ensure_certificates(directory: Path, namespace: str, cluster: str,
                        account: pwd.struct_passwd | None) -> tuple[Path, Path, Path]:
    """(ca.crt, server.crt, server.key) in `directory`, made once; the key readable by the service user only."""
    ca_path, cert_path, key_path = directory / "ca.crt", directory / "server.crt", directory / "server.key"
    if ca_path.exists() and cert_path.exists() and key_path.exists():
        return ca_path, cert_path, key_path
    now = dt.datetime.now(dt.UTC)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_cert = (
        x509.CertificateBuilder().subject_name(_name(f"{cluster}-ca")).issuer_name(_name(f"{cluster}-ca"))
        .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    key = ec.generate_private_key(ec.SECP256R1())
    names = [f"{cluster}-{role}" for role in ("rw", "ro", "r")]
    names += [f"{n}.{namespace}.svc" for n in names] + ["localhost"]
    cert = (
        x509.CertificateBuilder().subject_name(_name(f"{cluster}-rw")).issuer_name(ca_cert.subject)
        .public_key(key.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(
            [x509.DNSName(n) for n in names] + [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]), critical=False)
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    processes.write_private(key_path, key.private_bytes(
        pem, serialization.PrivateFormat.TraditionalOpenSSL, serialization.NoEncryption()).decode(), account)
    processes.write_private(cert_path, cert.public_bytes(pem).decode(), account, mode=0o644)
    processes.write_private(ca_path, ca_cert.public_bytes(pem).decode(), account, mode=0o644)
    return ca_path, cert_path, key_path
