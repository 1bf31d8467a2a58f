"""A self-signed TLS certificate for the compose proxy on a local machine, made once.

docker-compose.yml runs it before nginx starts (the `tls-cert` service): when the certificate folder
already holds `fullchain.pem` and `privkey.pem` (a real certificate, or one made earlier) it changes
nothing. Browsers and clients warn about a self-signed certificate; production uses a real one.

    python deploy/self_signed_cert.py deploy/certs [host names or addresses...]
"""

from __future__ import annotations

import datetime
import ipaddress
import os
import sys
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


def _names(hosts: list[str]) -> list[x509.GeneralName]:
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    return names


def main(folder: Path, hosts: list[str]) -> None:
    certificate, key_file = folder / "fullchain.pem", folder / "privkey.pem"
    if certificate.exists() and key_file.exists():
        print(f"{certificate} exists: kept")
        return
    folder.mkdir(parents=True, exist_ok=True)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, hosts[0])])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(days=365))
        .add_extension(x509.SubjectAlternativeName(_names(hosts)), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .sign(key, hashes.SHA256())
    )
    descriptor = os.open(key_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "wb") as out:
        out.write(
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            )
        )
    certificate.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    print(f"self-signed certificate for {', '.join(hosts)} written to {certificate} (valid 365 days)")


if __name__ == "__main__":
    main(
        Path(sys.argv[1] if len(sys.argv) > 1 else "deploy/certs"),
        sys.argv[2:] or ["localhost", "127.0.0.1", "::1"],
    )
