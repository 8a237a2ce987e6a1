"""Provenance end to end: identity, protect_video / sign / verify, tampering, stripping and recovery, bad
inputs, and the CLI (one-line errors, exit codes)."""
from __future__ import annotations

import base64
import hashlib
import os
import struct
import sys

import numpy as np
import pytest

from daas.errors import DaasError
from provenance import protect_video, sign_video, verify_video
from provenance.identity import IdentityError, init_dev_identity, load_identity
from provenance.store import ManifestStore
from world import make_clip

PARAMS = {"prompt": "a red ball falls", "seed": 7, "steps": 16, "guidance": 3.0, "frames": 17, "size": [64, 64],
          "guidance_interval": [0.4, 1.0], "model": "dit-tiny"}
AGENT = {"name": "daas-generator", "version": "0.1.0", "checkpoint": "sha256:0123abcd"}


@pytest.fixture
def home(tmp_path, monkeypatch):
    monkeypatch.setenv("DAAS_HOME", str(tmp_path / "home"))
    for v in ("DAAS_SIGN_CERT", "DAAS_SIGN_KEY", "DAAS_TSA_URL", "DAAS_TRUST_ANCHORS", "DAAS_MANIFEST_STORE"):
        monkeypatch.delenv(v, raising=False)
    return tmp_path


@pytest.fixture
def protected(home):
    clip = make_clip(950_007)
    out = protect_video(clip.frames, clip.fps, home / "gen.mp4", params=PARAMS, software_agent=AGENT)
    return home / "gen.mp4", out, load_identity(create=False)


def boxes(data: bytes):
    i = 0
    while i + 8 <= len(data):
        size, typ = struct.unpack(">I4s", data[i:i + 8])
        yield typ, i, size
        i += size


def remux(src, dst):
    import av

    with av.open(str(src)) as i, av.open(str(dst), "w") as o:
        st = o.add_stream_from_template(i.streams.video[0])
        for p in i.demux(i.streams.video[0]):
            if p.dts is not None:
                p.stream = st
                o.mux(p)


def sha(p):
    return hashlib.sha256(open(p, "rb").read()).hexdigest()


def test_protect_then_verify_trusted_and_untrusted(protected):
    path, out, ident = protected
    assert out["path"] == str(path) and len(out["payload"]) == 8 and out["manifest_label"].startswith("urn:c2pa:")
    rep = verify_video(path, trust_anchors=ident.ca_pem)
    assert rep.status == "valid-trusted" and rep.manifest_label == out["manifest_label"]
    c = rep.claims
    assert c["digital_source_type"].endswith("/trainedAlgorithmicMedia")
    assert c["software_agent"]["checkpoint"] == "sha256:0123abcd"
    assert c["actions"] == ["c2pa.created", "c2pa.watermarked"]
    assert c["daas"]["prompt"] == "a red ball falls" and c["daas"]["size"] == "64x64" and c["daas"]["seed"] == 7
    assert c["daas"]["guidance_interval"] == "0.4, 1.0"  # a list of floats the SDK would have dropped
    assert c["soft_binding"]["alg"] == out["watermark_alg"]
    assert c["training_mining"]["entries"]["cawg.ai_generative_training"]["use"] == "notAllowed"
    assert c["signer"] == "DAAS development signer"
    untrusted = verify_video(path)
    assert untrusted.status == "valid-untrusted-signer" and untrusted.watermark is None  # valid: no watermark scan
    assert rep.to_dict()["status"] == "valid-trusted"


def test_byte_flipped_in_mdat_is_tampered(protected, home):
    path, _, ident = protected
    data = bytearray(path.read_bytes())
    _, off, size = next(b for b in boxes(bytes(data)) if b[0] == b"mdat")
    data[off + 8 + size // 2] ^= 0xFF
    bad = home / "flipped.mp4"
    bad.write_bytes(bytes(data))
    rep = verify_video(bad, trust_anchors=ident.ca_pem)
    assert rep.status == "tampered" and "assertion.bmffHash.mismatch" in rep.failures
    assert "assertion.bmffHash.mismatch" in rep.message


def test_stripped_manifest_is_recovered_by_watermark(protected, home):
    path, out, ident = protected
    stripped = home / "remuxed.mp4"
    remux(path, stripped)
    rep = verify_video(stripped, trust_anchors=ident.ca_pem)
    assert rep.status == "absent" and rep.manifest_label is None
    assert rep.watermark["detected"] and rep.watermark["payload"] == out["payload"]
    assert rep.watermark["p_value"] <= 1e-6
    assert rep.recovered["manifest_label"] == out["manifest_label"]
    assert rep.recovered["soft_binding_match"] and rep.recovered["signature"] == "trusted"
    assert rep.recovered["claims"]["daas"]["prompt"] == "a red ball falls"
    assert "recovered via soft binding" in rep.message and rep.ai_generated


def test_reencoded_at_crf28_is_recovered(protected, home):
    from daas.video import read_video, write_video

    path, out, _ = protected
    frames, fps = read_video(path)
    write_video(home / "crf28.mp4", frames, fps, crf=28)
    rep = verify_video(home / "crf28.mp4")
    assert rep.status == "absent" and rep.watermark["payload"] == out["payload"]
    assert rep.recovered and rep.recovered["manifest_label"] == out["manifest_label"]


def test_mark_too_weak_to_decode_is_recovered_through_the_store(home, monkeypatch):
    """Heavy noise leaves the mark below what the blind tests decode; verify_video also tests the payloads of
    the manifest store, which names it (the one stored payload here) and recovers the manifest. The watermark key
    and payload are fixed: under this much noise the known-payload test misses some random (key, payload) pairs
    (4 of 60 random pairs when session 20 ran this path with
    `watermark.embed` and `detect_file`), so with the identity's random key the test failed now and then."""
    import secrets

    from daas.video import read_video, write_video
    from provenance import watermark as wm
    from provenance.identity import Identity

    monkeypatch.setattr(Identity, "watermark_key", lambda self: bytes(range(32)))
    monkeypatch.setattr(secrets, "randbits", lambda k: 0x5A3C96E1 & ((1 << k) - 1))
    clip = make_clip(950_007)
    out = protect_video(clip.frames, clip.fps, home / "gen.mp4", params=PARAMS, software_agent=AGENT)
    frames, fps = read_video(home / "gen.mp4")
    noise = np.random.default_rng(0).normal(0, 50, frames.shape[:3])[..., None]
    write_video(home / "noisy.mp4", np.clip(frames + noise, 0, 255).astype(np.uint8), fps, crf=18)
    blind = wm.detect_file(home / "noisy.mp4", wm.WatermarkKey(bytes(range(32))))
    assert blind.payload is None  # the blind decoder alone does not name it
    rep = verify_video(home / "noisy.mp4")
    assert rep.status == "absent" and rep.watermark["detected"] and rep.watermark["p_value"] <= 1e-6
    assert rep.watermark["payload"] == out["payload"] and rep.recovered["manifest_label"] == out["manifest_label"]
    assert rep.recovered["soft_binding_match"]
    assert ManifestStore().values(out["watermark_alg"]) == [base64.b64encode(bytes.fromhex(out["payload"])).decode()]


def test_other_identity_finds_nothing(protected, home, monkeypatch):
    path, _, _ = protected
    stripped = home / "remuxed.mp4"
    remux(path, stripped)
    monkeypatch.setenv("DAAS_HOME", str(home / "other"))
    init_dev_identity()
    rep = verify_video(stripped, store=home / "home" / "manifests.sqlite")
    assert rep.status == "absent" and not rep.watermark["detected"] and rep.recovered is None


def test_store_interface(protected, home):
    _, out, _ = protected
    store = ManifestStore()
    assert store.path == home / "home" / "manifests.sqlite" and len(store) == 1
    import base64

    value = base64.b64encode(bytes.fromhex(out["payload"])).decode()
    m = store.matches_by_binding(out["watermark_alg"], value)
    assert m["matches"][0]["manifestId"] == out["manifest_label"]
    assert store.get_manifest(out["manifest_label"])[:4] != b"" and store.get_manifest("urn:c2pa:none") is None
    assert store.matches_by_binding(out["watermark_alg"], "AAAAAA==") == {"matches": []}


def test_sign_user_video_keeps_input_and_is_atomic(home):
    from daas.video import write_video

    src = home / "in.mp4"
    write_video(src, make_clip(950_008).frames, 8)
    before = sha(src)
    out = sign_video(src, home / "out.mov", {"source_type": "compositeWithTrainedAlgorithmicMedia"})
    assert sha(src) == before
    rep = verify_video(home / "out.mov")
    assert rep.status == "valid-untrusted-signer" and rep.claims["digital_source_type"].endswith("compositeWithTrainedAlgorithmicMedia")
    assert out["manifest_label"] == rep.manifest_label
    with pytest.raises(DaasError, match="already exists"):
        sign_video(src, home / "out.mov")
    with pytest.raises(DaasError, match="must differ"):
        sign_video(src, src, overwrite=True)
    assert sorted(p.name for p in home.iterdir() if p.name.startswith(".")) == []  # no temp files left


def test_dev_identity_files_and_checks(home):
    ident = init_dev_identity()
    keys = home / "home" / "keys"
    assert oct(os.stat(keys / "signer.key").st_mode & 0o777) == "0o600"
    assert oct(os.stat(keys / "ca.key").st_mode & 0o777) == "0o600"
    from cryptography import x509

    leaf, ca = x509.load_pem_x509_certificates((keys / "chain.pem").read_bytes())
    assert not leaf.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert ca.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    assert leaf.issuer == ca.subject
    assert b"PRIVATE" not in repr(ident).encode() and "BEGIN" not in repr(ident)
    with pytest.raises(IdentityError, match="already exists"):
        init_dev_identity()
    # loose permissions are refused
    os.chmod(keys / "signer.key", 0o644)
    with pytest.raises(IdentityError, match="chmod 600"):
        load_identity()
    os.chmod(keys / "signer.key", 0o600)
    # a CA certificate as signer is refused
    with pytest.raises(IdentityError, match="CA certificate"):
        load_identity(keys / "ca.pem", keys / "ca.key")
    # a key that does not match, a missing key, a cert without key
    with pytest.raises(IdentityError, match="does not match"):
        load_identity(keys / "chain.pem", keys / "ca.key")
    with pytest.raises(IdentityError, match="not found"):
        load_identity(keys / "chain.pem", keys / "missing.key")
    with pytest.raises(IdentityError, match="both"):
        load_identity(keys / "chain.pem", None)


def test_env_identity(home, monkeypatch):
    init_dev_identity()
    keys = home / "home" / "keys"
    monkeypatch.setenv("DAAS_SIGN_CERT", str(keys / "chain.pem"))
    monkeypatch.setenv("DAAS_SIGN_KEY", str(keys / "nope.key"))
    with pytest.raises(IdentityError, match="nope.key"):
        load_identity()
    monkeypatch.setenv("DAAS_SIGN_KEY", str(keys / "signer.key"))
    assert not load_identity().dev


@pytest.mark.parametrize("kind", ["empty", "text", "truncated", "missing"])
def test_bad_inputs(home, kind):
    from daas.video import write_video

    p = home / "bad.mp4"
    if kind == "empty":
        p.write_bytes(b"")
    elif kind == "text":
        p.write_text("not a video at all\n" * 20)
    elif kind == "truncated":
        write_video(home / "ok.mp4", make_clip(950_009).frames, 8)
        p.write_bytes((home / "ok.mp4").read_bytes()[:300])
    with pytest.raises(DaasError):
        sign_video(p, home / "signed.mp4")
    assert not (home / "signed.mp4").exists()
    if kind == "missing":
        with pytest.raises(DaasError, match="no such file"):
            verify_video(p)
    else:
        rep = verify_video(p)
        assert rep.status == "unreadable"
        if kind == "text":  # no MP4 at all: said plainly, not as the C2PA SDK's box-parsing error
            assert rep.message.startswith("not a readable video"), rep.message


def test_a_video_in_another_container_named_mp4_is_absent_and_checked_for_the_mark(home):
    from daas.video import write_video
    from provenance import load_identity
    from provenance import watermark as wm

    key = wm.WatermarkKey(load_identity().watermark_key())
    write_video(home / "clip.mkv", wm.embed(make_clip(950_011).frames, key, 0x1234ABCD), 8)
    p = home / "clip.mp4"
    p.write_bytes((home / "clip.mkv").read_bytes())  # Matroska named .mp4, as downloaded files often are
    rep = verify_video(p)
    assert rep.status == "absent" and "not an MP4" in rep.message and rep.message.isprintable()
    assert rep.watermark["detected"] is True  # the video was read and its mark found
    with pytest.raises(DaasError, match="not an MP4 file inside"):  # signing says what is wrong, and writes nothing
        sign_video(p, home / "signed.mp4")
    assert not (home / "signed.mp4").exists()


def test_a_headerless_image_is_unreadable_and_the_message_names_the_file_once(home):
    p = home / "still.png"
    p.write_bytes(b"P6\n64 64\n255\n")  # a PPM header and no pixels: C2PA finds no manifest, the decoder no frame
    rep = verify_video(p)
    assert rep.status == "unreadable" and "decode" in rep.message and str(p) not in rep.message


def test_deeply_nested_boxes_fail_cleanly(home):
    ftyp = struct.pack(">I4s", 20, b"ftyp") + b"isom" + struct.pack(">I", 512) + b"isom"
    inner = b""
    for _ in range(1000):
        inner = struct.pack(">I4s", 8 + len(inner), b"moov") + inner
    (home / "nested.mp4").write_bytes(ftyp + inner)
    rep = verify_video(home / "nested.mp4")  # the SDK bounds the depth: an error, not a hang or a crash
    assert rep.status == "unreadable" and "nested" in rep.message


def test_sign_refuses_unknown_container_and_bad_anchors(home):
    from daas.video import write_video

    write_video(home / "c.mkv", make_clip(950_010).frames, 8)
    with pytest.raises(DaasError, match="MP4"):
        sign_video(home / "c.mkv", home / "c2.mkv")
    (home / "anchors.pem").write_text("nothing here")
    with pytest.raises(DaasError, match="PEM"):
        verify_video(home / "c.mkv", trust_anchors=home / "anchors.pem")


def run_cli(monkeypatch, capsys, *args):
    from daas import cli

    monkeypatch.setattr(sys, "argv", ["daas", *map(str, args)])
    try:
        cli.main()
        code = 0
    except SystemExit as e:
        code = e.code or 0
    out = capsys.readouterr()
    return code, out.out, out.err


def test_cli(home, monkeypatch, capsys):
    from daas.video import write_video

    write_video(home / "x.mp4", make_clip(950_011).frames, 8)
    code, out, err = run_cli(monkeypatch, capsys, "keys", "init")
    assert code == 0 and "signer.key" in out and "PRIVATE" not in out + err
    code, out, err = run_cli(monkeypatch, capsys, "sign", home / "x.mp4", "-o", home / "s.mp4")
    assert code == 0 and (home / "s.mp4").exists()
    ca = home / "home" / "keys" / "ca.pem"
    code, out, err = run_cli(monkeypatch, capsys, "verify", home / "s.mp4", "--trust-anchors", ca, "--json")
    import json

    assert code == 0 and json.loads(out)["reports"][0]["status"] == "valid-trusted"
    code, out, err = run_cli(monkeypatch, capsys, "verify", home / "s.mp4", home / "x.mp4")
    assert code == 0 and "valid-untrusted-signer" in out and "absent" in out
    assert "watermark: not detected (p <= " in out and "above the 1e-06 threshold)" in out  # x.mp4 is unmarked
    (home / "junk.mp4").write_text("junk")
    for args in (["verify", home / "missing.mp4"], ["verify", home / "junk.mp4"],
                 ["sign", home / "junk.mp4", "-o", home / "j.mp4"], ["keys", "init"],
                 ["sign", home / "x.mp4", "-o", home / "s.mp4"]):
        code, out, err = run_cli(monkeypatch, capsys, *args)
        assert code == 2, args
        assert err.startswith("error: ") and "Traceback" not in err and len(err.strip().splitlines()) == 1, err
    assert not (home / "j.mp4").exists()
