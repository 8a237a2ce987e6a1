"""Provenance beyond our own defaults: identities issued elsewhere (other key types than the dev P-256) and
manifests that another tool wrote (its own claim generator, actions v1, an ingredient, no DAAS assertion).

No third-party C2PA files can be fetched offline, so the "other tool" is the C2PA SDK driven directly with a
manifest shaped the way editing tools write them; `verify_video` must read it without knowing our labels."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from provenance import sign_video, verify_video
from provenance.identity import IdentityError, load_identity
from world import make_clip

from daas.video import write_video


def _chain(tmp_path, kind: str, org: str = "Peer Studio"):
    """A CA and a leaf of the given key type, written as chain.pem (leaf, CA) + key.pem (0600) + ca.pem."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519, rsa
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    def new_key():
        return {"p384": lambda: ec.generate_private_key(ec.SECP384R1()), "ed25519": ed25519.Ed25519PrivateKey.generate,
                "rsa": lambda: rsa.generate_private_key(65537, 2048), "rsa1024": lambda: rsa.generate_private_key(65537, 1024),
                "p256": lambda: ec.generate_private_key(ec.SECP256R1())}[kind]()

    def name(cn):
        return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn), x509.NameAttribute(NameOID.ORGANIZATION_NAME, org)])

    digest = None if kind == "ed25519" else hashes.SHA256()
    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    ca_key, leaf_key = new_key(), new_key()
    ski = x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key())
    ca = (x509.CertificateBuilder().subject_name(name(f"{org} CA")).issuer_name(name(f"{org} CA"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
          .add_extension(ski, critical=False).sign(ca_key, digest))
    leaf = (x509.CertificateBuilder().subject_name(name(f"{org} signer")).issuer_name(ca.subject)
            .public_key(leaf_key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now).not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(True, False, False, False, False, False, False, False, False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), critical=False)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(leaf_key.public_key()), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
            .sign(ca_key, digest))
    pem = serialization.Encoding.PEM
    d = tmp_path / f"peer_{kind}"
    d.mkdir()
    (d / "chain.pem").write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    (d / "ca.pem").write_bytes(ca.public_bytes(pem))
    (d / "key.pem").write_bytes(leaf_key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    (d / "key.pem").chmod(0o600)
    return d


@pytest.fixture
def clip_mp4(tmp_path, monkeypatch):
    monkeypatch.setenv("DAAS_HOME", str(tmp_path / "home"))
    for v in ("DAAS_SIGN_CERT", "DAAS_SIGN_KEY", "DAAS_TSA_URL", "DAAS_TRUST_ANCHORS", "DAAS_MANIFEST_STORE"):
        monkeypatch.delenv(v, raising=False)
    clip = make_clip(950_011)
    return write_video(tmp_path / "in.mp4", clip.frames, clip.fps)


@pytest.mark.parametrize("kind,alg", [("p384", "ES384"), ("ed25519", "ED25519"), ("rsa", "PS256")])
def test_identity_issued_elsewhere_signs_with_its_own_algorithm(tmp_path, clip_mp4, kind, alg):
    d = _chain(tmp_path, kind)
    ident = load_identity(d / "chain.pem", d / "key.pem")
    assert ident.algorithm == alg and len(ident.watermark_key()) == 32
    sign_video(clip_mp4, tmp_path / "signed.mp4", {"params": {"prompt": "x"}}, identity=ident)
    trusted = verify_video(tmp_path / "signed.mp4", trust_anchors=d / "ca.pem", watermark="never")
    assert trusted.status == "valid-trusted", trusted.message
    assert "Peer Studio" in (trusted.claims["signer"] or "") + (trusted.claims["issuer"] or "")
    assert verify_video(tmp_path / "signed.mp4", watermark="never").status == "valid-untrusted-signer"


def test_identity_with_a_short_rsa_key_is_refused(tmp_path):
    d = _chain(tmp_path, "rsa1024")
    with pytest.raises(IdentityError, match="too short"):
        load_identity(d / "chain.pem", d / "key.pem")


def test_reads_a_manifest_another_tool_wrote_over_ours(tmp_path, clip_mp4):
    """An editor opens our signed clip, grades it and signs its own manifest with ours as parent ingredient."""
    from c2pa import Builder

    ours = tmp_path / "ours.mp4"
    sign_video(clip_mp4, ours, {"params": {"prompt": "a red ball falls", "seed": 3}})
    d = _chain(tmp_path, "p384", org="Other Editor Inc")
    peer = load_identity(d / "chain.pem", d / "key.pem")
    definition = {
        "claim_generator_info": [{"name": "Other Editor", "version": "7.2.1"}],
        "title": "graded.mp4", "format": "video/mp4",
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [
            {"action": "c2pa.opened", "softwareAgent": "Other Editor 7.2.1", "parameters": {"ingredientIds": ["parent"]}},
            {"action": "c2pa.color_adjustments", "parameters": {"name": "brightness"}},
            {"action": "c2pa.edited", "digitalSourceType":
             "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia"}]}},
            {"label": "stds.schema-org.CreativeWork", "data": {"@context": "https://schema.org", "@type": "CreativeWork",
                                                               "author": [{"@type": "Person", "name": "A. Editor"}]}}],
    }
    builder = Builder(definition)
    with open(ours, "rb") as f:
        builder.add_ingredient(json.dumps({"title": "ours.mp4", "relationship": "parentOf", "label": "parent"}), "video/mp4", f)
    signer = peer.signer()
    try:
        with open(ours, "rb") as src, open(tmp_path / "graded.mp4", "w+b") as dst:
            builder.sign(signer, "video/mp4", src, dst)
    finally:
        signer.close()

    rep = verify_video(tmp_path / "graded.mp4", trust_anchors=d / "ca.pem", watermark="never")
    assert rep.status == "valid-trusted", rep.message
    c = rep.claims
    assert "Other Editor" in json.dumps(c["generator"])
    assert {"c2pa.opened", "c2pa.color_adjustments", "c2pa.edited"} <= set(c["actions"])
    assert c["digital_source_type"].endswith("compositeWithTrainedAlgorithmicMedia")
    assert c["daas"] is None and c["soft_binding"] is None  # nothing of ours is assumed
    assert rep.ai_generated is True
    [parent] = c["ingredients"]
    assert parent["relationship"] == "parentOf" and parent["title"] == "ours.mp4"
    assert parent["manifest_label"] == verify_video(ours, watermark="never").manifest_label  # the chain is kept
    # the file is the editor's; ours, untouched, still verifies on its own
    assert verify_video(ours, watermark="never").status == "valid-untrusted-signer"
