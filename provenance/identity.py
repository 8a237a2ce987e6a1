"""Signing identities: a local development CA + leaf (ES256), or a chain issued elsewhere (EC P-256/384/521,
Ed25519 or RSA-PSS; the signing algorithm follows the key).

Why the certificate looks like this: c2pa-rs refuses self-signed signers, CA certificates as signers, and
leaves without KeyUsage digitalSignature, an EKU (emailProtection / documentSigning) and SKI/AKI. So the
development identity is a two-level chain, P-256 both, written as `chain.pem` (leaf, then CA) with the CA
alone in `ca.pem` (give it to `daas verify --trust-anchors` to get "valid-trusted").

Private keys: created with mode 0600 (atomic, never replacing a file), refused when group/other can read
them, never printed, logged or embedded. The watermark key is derived from the signing key (HKDF), so one
secret keys both; another identity cannot read or forge our watermark.
"""
from __future__ import annotations

import datetime as dt
import os
import stat
import sys
from dataclasses import dataclass, field
from pathlib import Path

from daas.errors import DaasError

ENV_CERT, ENV_KEY, ENV_TSA = "DAAS_SIGN_CERT", "DAAS_SIGN_KEY", "DAAS_TSA_URL"
DEV_NAME = "DAAS development signer"


class IdentityError(DaasError):
    """The signing certificate or key is missing, unreadable, unsafe or unsuitable."""


@dataclass
class Identity:
    chain_pem: bytes = field(repr=False)  # leaf first, then intermediates / CA
    key_pem: bytes = field(repr=False)  # never printed: repr hides it
    cert_path: Path | None = None
    key_path: Path | None = None
    tsa_url: str | None = None
    dev: bool = False
    ca_pem: bytes | None = field(default=None, repr=False)

    @property
    def subject(self) -> str:
        return _leaf(self.chain_pem).subject.rfc4514_string()

    @property
    def algorithm(self) -> str:
        """The C2PA signing algorithm the key implies (a chain issued elsewhere need not be P-256)."""
        from cryptography.hazmat.primitives import serialization
        from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa

        key = serialization.load_pem_private_key(self.key_pem, None)
        if isinstance(key, ec.EllipticCurvePrivateKey):
            alg = {"secp256r1": "ES256", "secp384r1": "ES384", "secp521r1": "ES512"}.get(key.curve.name)
        elif isinstance(key, ed25519.Ed25519PrivateKey):
            alg = "ED25519"
        elif isinstance(key, rsa.RSAPrivateKey):
            alg = "PS256"  # C2PA allows RSA only with PSS padding
        else:
            alg = None
        if alg is None:
            raise IdentityError("the signing key must be EC P-256/384/521, Ed25519 or RSA (C2PA's algorithms)")
        return alg

    def signer(self):
        """A c2pa Signer (certificate and key as bytes; no TSA unless one was configured)."""
        from c2pa import C2paSignerInfo, C2paSigningAlg, Signer

        alg = getattr(C2paSigningAlg, self.algorithm)
        try:
            return Signer.from_info(C2paSignerInfo(alg, self.chain_pem, self.key_pem, self.tsa_url))
        except Exception as e:  # the SDK's message names the problem, never the key
            raise IdentityError(f"the signing certificate/key were refused by the C2PA SDK: {e}") from None

    def watermark_key(self) -> bytes:
        """32 secret bytes for the watermark, derived from the private key (HKDF-SHA256)."""
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.kdf.hkdf import HKDF

        key = serialization.load_pem_private_key(self.key_pem, None)
        if hasattr(key, "curve"):  # EC: the scalar (kept as in v1, so existing marks stay readable)
            raw = key.private_numbers().private_value.to_bytes(66, "big")
        else:  # Ed25519, RSA: the canonical PKCS#8 encoding of the key
            raw = key.private_bytes(serialization.Encoding.DER, serialization.PrivateFormat.PKCS8,
                                    serialization.NoEncryption())
        return HKDF(hashes.SHA256(), 32, salt=b"daas-watermark-v1", info=b"watermark key").derive(raw)


def keys_dir() -> Path:
    from daas.paths import daas_home

    d = daas_home() / "keys"
    d.mkdir(parents=True, exist_ok=True, mode=0o700)
    return d


def _leaf(chain_pem: bytes):
    from cryptography import x509

    try:
        certs = x509.load_pem_x509_certificates(chain_pem)
    except ValueError:
        certs = []
    if not certs:
        raise IdentityError("the certificate file holds no PEM certificate")
    return certs[0]


def check_key_permissions(path: Path) -> None:
    if os.name == "posix" and stat.S_IMODE(path.stat().st_mode) & 0o077:
        raise IdentityError(f"private key {path} is readable by others (mode "
                            f"{stat.S_IMODE(path.stat().st_mode):o}); run: chmod 600 {path}")


def init_dev_identity(overwrite: bool = False, days: int = 825) -> Identity:
    """Create the development CA and leaf under daas_home()/keys (refuses to replace them unless asked)."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    from daas.fileio import write_bytes

    d = keys_dir()
    if (d / "signer.key").exists() and not overwrite:
        raise IdentityError(f"a signing identity already exists in {d} (pass --overwrite to replace it)")
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, "DAAS (local development)")])

    ca_key, leaf_key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(name("DAAS development CA")).issuer_name(name("DAAS development CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(ca_ski, critical=False)
          .sign(ca_key, hashes.SHA256()))
    leaf = (x509.CertificateBuilder().subject_name(name(DEV_NAME)).issuer_name(ca.subject)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    pkcs8 = dict(encoding=pem, format=serialization.PrivateFormat.PKCS8, encryption_algorithm=serialization.NoEncryption())
    ca_pem, leaf_pem = ca.public_bytes(pem), leaf.public_bytes(pem)
    # The CA key is kept (0600) only so the user can issue more leaves; nothing here reads it again.
    write_bytes(d / "ca.key", ca_key.private_bytes(**pkcs8), overwrite, mode=0o600)
    write_bytes(d / "ca.pem", ca_pem, overwrite)
    write_bytes(d / "chain.pem", leaf_pem + ca_pem, overwrite)
    write_bytes(d / "signer.key", leaf_key.private_bytes(**pkcs8), overwrite, mode=0o600)
    return _load(d / "chain.pem", d / "signer.key", os.environ.get(ENV_TSA) or None, dev=True)


def load_identity(cert: str | os.PathLike | None = None, key: str | os.PathLike | None = None,
                  tsa_url: str | None = None, *, create: bool = True, announce=None) -> Identity:
    """The identity to sign with: explicit paths, else DAAS_SIGN_CERT/DAAS_SIGN_KEY, else the dev identity
    (created on first use when `create`, saying so once through `announce`, default stderr)."""

    cert = cert or os.environ.get(ENV_CERT) or None
    key = key or os.environ.get(ENV_KEY) or None
    tsa_url = tsa_url or os.environ.get(ENV_TSA) or None
    if bool(cert) != bool(key):
        raise IdentityError("give both a certificate chain and its private key (--cert/--key or "
                            f"{ENV_CERT}/{ENV_KEY}), or neither to use the development identity")
    dev = cert is None
    if dev:
        d = keys_dir()
        cert, key = d / "chain.pem", d / "signer.key"
        if not key.exists() and create:
            ident = init_dev_identity()
            (announce or (lambda m: sys.stderr.write(m + "\n")))(
                f"created a development signing identity in {d} (trust anchor: {d / 'ca.pem'})")
            return ident
    return _load(Path(cert), Path(key), tsa_url, dev)


def _load(cert: Path, key: Path, tsa_url: str | None, dev: bool) -> Identity:
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    for p, what in ((cert, "certificate"), (key, "private key")):
        if not p.is_file():
            raise IdentityError(f"{what} file {p} not found" + (" (run: daas keys init)" if dev else ""))
    check_key_permissions(key)
    chain_pem, key_pem = cert.read_bytes(), key.read_bytes()
    leaf = _leaf(chain_pem)
    try:
        private = serialization.load_pem_private_key(key_pem, None)
    except (ValueError, TypeError):
        raise IdentityError(f"{key} is not an unencrypted PEM private key") from None
    ident = Identity(chain_pem, key_pem, cert, key, tsa_url, dev)
    ident.algorithm  # refuses key types C2PA cannot sign with
    if isinstance(private, rsa.RSAPrivateKey) and private.key_size < 2048:
        raise IdentityError(f"{key}: an RSA key of {private.key_size} bits is too short (C2PA needs >= 2048)")
    spki = (serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    if private.public_key().public_bytes(*spki) != leaf.public_key().public_bytes(*spki):
        raise IdentityError(f"{key} does not match the first certificate of {cert}")
    try:
        if leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca:
            raise IdentityError(f"{cert}: the signing certificate is a CA certificate; sign with a leaf issued by it")
    except x509.ExtensionNotFound:
        pass
    if leaf.issuer == leaf.subject:
        raise IdentityError(f"{cert}: the signing certificate is self-signed; C2PA needs a leaf issued by a CA")
    ca_pem = (cert.parent / "ca.pem").read_bytes() if dev and (cert.parent / "ca.pem").exists() else None
    return Identity(chain_pem, key_pem, cert, key, tsa_url, dev, ca_pem)
