"""C2PA signing and verification of videos (c2pa-python), and the one-call `protect_video` for generators.

Signing: the SDK adds the BMFF hard binding (`c2pa.hash.bmff.v3`) itself; we give `c2pa.actions.v2`
(c2pa.created + digitalSourceType + softwareAgent, c2pa.watermarked), our `org.daas.generation` assertion,
`c2pa.soft-binding` (C2PA 2.2 section 18.10) and `cawg.training-mining`. Output is written to a temporary
file opened "w+b" (the BMFF writer reads back what it wrote) and moved into place atomically.

Verification: the SDK's own validation (Context with our trust anchors; remote manifest fetch and OCSP off),
mapped to one status: valid-trusted / valid-untrusted-signer / tampered (with the failed codes) / absent /
unreadable. When the manifest is absent or tampered, the watermark is detected and the manifest recovered
from the store by its soft binding; the recovered manifest's soft-binding value must equal the decoded one.
"""
from __future__ import annotations

import base64
import io
import json
import os
import secrets
from dataclasses import asdict, dataclass, field
from pathlib import Path

from daas.errors import DaasError, VideoError, without_path

from . import watermark as wm

SOURCE_TYPES = {
    "trainedAlgorithmicMedia": "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia",
    "compositeWithTrainedAlgorithmicMedia":
        "http://cv.iptc.org/newscodes/digitalsourcetype/compositeWithTrainedAlgorithmicMedia",
}
MIME = {".mp4": "video/mp4", ".m4v": "video/mp4", ".mov": "video/quicktime", ".avi": "video/x-msvideo"}
DAAS_LABEL = "org.daas.generation"
READ_SETTINGS = {"verify": {"remote_manifest_fetch": False, "ocsp_fetch": False}}
_BENIGN = {"signingCredential.untrusted", "signingCredential.ocsp.skipped"}


class SignError(DaasError):
    """A video could not be signed (unsupported container, corrupt input, SDK refusal)."""


@dataclass
class ProvenanceReport:
    path: str
    status: str  # valid-trusted | valid-untrusted-signer | tampered | absent | unreadable
    message: str = ""
    failures: list = field(default_factory=list)  # validation codes that failed (tampered)
    manifest_label: str | None = None
    claims: dict = field(default_factory=dict)
    watermark: dict | None = None  # Detection.to_dict(), when the watermark was checked
    recovered: dict | None = None  # {"manifest_label", "claims", "soft_binding_match", "signature"} when recovered

    def to_dict(self) -> dict:
        return asdict(self)

    @property
    def ai_generated(self) -> bool | None:
        dst = (self.claims or (self.recovered or {}).get("claims") or {}).get("digital_source_type") or ""
        if "trainedAlgorithmicMedia" in dst or "TrainedAlgorithmicMedia" in dst:
            return True
        return True if (self.watermark or {}).get("detected") else None


def _mime(path: Path) -> str:
    mime = MIME.get(path.suffix.lower())
    if mime is None:
        raise SignError(f"{path}: only MP4, MOV and AVI files can carry a C2PA manifest here (got "
                        f"{path.suffix or 'no extension'})")
    return mime


# the box types an ISO BMFF file (MP4, MOV) may open with: ftyp first as a rule, older QuickTime files otherwise
_BMFF_FIRST_BOXES = {b"ftyp", b"moov", b"mdat", b"free", b"skip", b"wide", b"pnot", b"uuid"}


def _head(path: Path) -> bytes:
    """The file's first 8 bytes: a BMFF box's size and type, or RIFF's tag."""
    with open(path, "rb") as f:
        return f.read(8)


def _is_bmff(path: Path) -> bool:
    return _head(path)[4:8] in _BMFF_FIRST_BOXES


def _check_container(path: Path, mime: str) -> None:
    """The file's bytes must be what its name says: the SDK reads a Matroska file named .mp4 as a broken MP4."""
    ok = _head(path)[:4] == b"RIFF" if mime == "video/x-msvideo" else _is_bmff(path)
    if not ok:
        raise SignError(f"{path}: not an {path.suffix.lstrip('.').upper()} file inside, whatever its name says "
                        "(remux it to MP4 to sign it, e.g. ffmpeg -i IN -c copy OUT.mp4)")


def _context(trust_anchors: str | bytes | os.PathLike | None):
    from c2pa import Context

    cfg = json.loads(json.dumps(READ_SETTINGS))
    pem = _read_anchors(trust_anchors)
    if pem:
        cfg["trust"] = {"trust_anchors": pem}
    return Context.from_dict(cfg)


def _read_anchors(anchors) -> str | None:
    if anchors is None:
        return None
    if isinstance(anchors, bytes):
        text = anchors.decode("ascii", "replace")
    elif isinstance(anchors, str) and "-----BEGIN" in anchors:
        text = anchors
    else:
        p = Path(anchors)
        if not p.is_file():
            raise DaasError(f"trust anchors file {p} not found")
        text = p.read_text("ascii", "replace")
    if "-----BEGIN CERTIFICATE-----" not in text:
        raise DaasError("trust anchors must be PEM certificates")
    return text


def build_manifest(*, title: str, software_agent: dict | None = None, params: dict | None = None,
                   source_type: str = "trainedAlgorithmicMedia", soft_binding: dict | None = None,
                   training_allowed: bool = False, watermarked: bool | None = None) -> dict:
    """The manifest definition given to c2pa.Builder."""
    from . import __version__

    if source_type not in SOURCE_TYPES:
        raise DaasError(f"source type must be one of {', '.join(SOURCE_TYPES)}, got {source_type!r}")
    agent = {k: str(v) for k, v in (software_agent or {"name": "DAAS", "version": __version__}).items()}
    created = {"action": "c2pa.created", "digitalSourceType": SOURCE_TYPES[source_type], "softwareAgent": agent}
    actions = [created]
    if watermarked if watermarked is not None else soft_binding is not None:
        actions.append({"action": "c2pa.watermarked", "softwareAgent": {"name": "DAAS watermark", "version": wm.ALG}})
    assertions = [{"label": "c2pa.actions.v2", "data": {"actions": actions}}]
    if params:
        assertions.append({"label": DAAS_LABEL, "data": _cbor_safe(json.loads(json.dumps(params, default=str)))})
    if soft_binding:
        assertions.append({"label": "c2pa.soft-binding", "data": soft_binding})
    use = "allowed" if training_allowed else "notAllowed"
    assertions.append({"label": "cawg.training-mining", "data": {"entries": {
        k: {"use": use} for k in ("cawg.ai_generative_training", "cawg.ai_training", "cawg.data_mining")}}})
    return {"claim_generator_info": [{"name": "DAAS", "version": __version__}], "title": title,
            "format": None, "assertions": assertions}


def _cbor_safe(obj, key=None):
    """The SDK does not keep a JSON list of numbers: integers became a CBOR byte string (size [64, 64] came back as
    "QEA="), floats an empty string (the guidance interval [0.4, 1.0] came back as ""); lists that hold anything
    else, and nested lists, come back as they were. So a size becomes "WxH" and any other list of numbers a string of
    them ("0.4, 1.0")."""
    if isinstance(obj, dict):
        return {k: _cbor_safe(v, k) for k, v in obj.items()}
    if isinstance(obj, list):
        if obj and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in obj):
            return "x".join(map(str, obj)) if key == "size" else ", ".join(map(repr, obj))
        return [_cbor_safe(v) for v in obj]
    return obj


def soft_binding_assertion(payload: int, duration: float) -> dict:
    """C2PA 2.2 section 18.10: one block covering the whole video. The timespan's start/end must be unsigned
    integers (the SDK rejects floats as claim.malformed); we give milliseconds."""
    return {"alg": wm.ALG, "blocks": [{"scope": {"timespan": {"start": 0, "end": int(round(duration * 1000))}},
                                        "value": soft_binding_value(payload)}]}


def soft_binding_value(payload: int) -> str:
    return base64.b64encode(payload.to_bytes(wm.PAYLOAD_BITS // 8, "big")).decode()


def _payload_of(value: str) -> int | None:
    """The payload of a stored soft-binding value (None for one we did not write)."""
    try:
        b = base64.b64decode(value, validate=True)
    except (ValueError, TypeError):
        return None
    return int.from_bytes(b, "big") if len(b) == wm.PAYLOAD_BITS // 8 else None


def _check_input(src: Path) -> None:
    from daas.video import probe

    if not src.exists():
        raise VideoError(f"{src}: no such file")
    if src.is_dir() or src.stat().st_size == 0:
        raise VideoError(f"{src}: {'a directory' if src.is_dir() else 'empty file'}, not a video")
    probe(src)  # a one-line VideoError for anything that is not a readable video


def sign_video(src: str | os.PathLike, dst: str | os.PathLike, info: dict | None = None, *, identity=None,
               overwrite: bool = False) -> dict:
    """Sign `src` into `dst` (atomic; `src` is never modified). `info` may hold title, software_agent,
    params, source_type, soft_binding, training_allowed, watermarked. Returns the label, signer and the
    signed manifest store bytes."""
    from c2pa import Builder

    from daas.fileio import atomic_path

    from .identity import load_identity

    src, dst = Path(src), Path(dst)
    _check_input(src)
    mime, _ = _mime(src), _mime(dst)
    _check_container(src, mime)
    if dst.exists() and dst.resolve() == src.resolve():
        raise SignError(f"{dst}: the output must differ from the input (inputs are never modified)")
    identity = identity or load_identity()
    info = dict(info or {})
    definition = build_manifest(title=info.pop("title", dst.name), **info)
    definition["format"] = mime
    signer = identity.signer()
    try:
        with atomic_path(dst, overwrite) as tmp, open(src, "rb") as fin, open(tmp, "w+b") as fout:
            try:
                manifest = Builder(definition).sign(signer, mime, fin, fout)
            except Exception as e:
                raise SignError(f"{src}: cannot sign ({' '.join(str(e).split())[:300]})") from None
    finally:
        signer.close()
    from c2pa import Reader

    with Reader(mime, io.BytesIO(b""), manifest_data=manifest) as r:
        label = r.get_active_manifest()["label"]
    return {"path": str(dst), "manifest_label": label, "manifest": manifest, "signer": identity.subject,
            "dev_identity": identity.dev}


def _claims(m: dict) -> dict:
    assertions = {a["label"]: a.get("data") for a in m.get("assertions", [])}
    actions = (assertions.get("c2pa.actions.v2") or assertions.get("c2pa.actions") or {}).get("actions", [])
    created = next((a for a in actions if a.get("action") == "c2pa.created"), {})
    sig = m.get("signature_info") or {}
    gen = m.get("claim_generator_info") or m.get("claim_generator")
    agent = created.get("softwareAgent")
    return {
        "generator": gen,
        "software_agent": agent,
        "actions": [a.get("action") for a in actions],
        "digital_source_type": created.get("digitalSourceType") or next(
            (a.get("digitalSourceType") for a in actions if a.get("digitalSourceType")), None),
        "signer": sig.get("common_name") or sig.get("issuer"),
        "issuer": sig.get("issuer"),
        "time": sig.get("time"),
        "daas": assertions.get(DAAS_LABEL),
        "soft_binding": assertions.get("c2pa.soft-binding"),
        "training_mining": assertions.get("cawg.training-mining"),
        "title": m.get("title"),
        # what the file was made from (an editor's manifest names our clip as its parent, for instance)
        "ingredients": [{"title": i.get("title"), "relationship": i.get("relationship"),
                         "manifest_label": i.get("active_manifest")} for i in m.get("ingredients", [])],
    }


def _status(reader) -> tuple[str, list]:
    state = reader.get_validation_state()
    results = (reader.get_validation_results() or {}).get("activeManifest") or {}
    failed = [f["code"] for f in results.get("failure", []) if f.get("code") not in _BENIGN]
    if state == "Trusted" and not failed:
        return "valid-trusted", []
    if state in ("Valid", "Trusted") and not failed:
        return "valid-untrusted-signer", []
    return "tampered", failed or [f.get("code") for f in results.get("failure", [])] or ["validation.invalid"]


def verify_video(path: str | os.PathLike, trust_anchors=None, store=None, *, watermark: str = "auto",
                 identity=None) -> ProvenanceReport:
    """Verify a video's C2PA manifest; on `absent`/`tampered` (or watermark="always") also detect our
    watermark and recover the manifest from the store. Never raises for a bad file: status "unreadable".
    Raises DaasError only for bad arguments (missing file, bad trust anchors)."""
    from c2pa import Reader

    path = Path(path)
    if not path.exists() or path.is_dir():
        raise VideoError(f"{path}: no such file" if not path.exists() else f"{path}: a directory, not a video")
    ctx = _context(trust_anchors)
    report = ProvenanceReport(str(path), "absent", "no C2PA manifest")
    if path.stat().st_size == 0:
        return ProvenanceReport(str(path), "unreadable", "empty file")
    try:
        reader = Reader.try_create(str(path), context=ctx) if path.suffix.lower() in MIME else None
        if reader is None and path.suffix.lower() not in MIME and _head(path)[4:8] == b"ftyp":
            with open(path, "rb") as f:
                reader = Reader.try_create("video/mp4", f, context=ctx)
    except Exception as e:
        if _is_bmff(path):  # an MP4/MOV whose boxes the SDK refuses (truncated, corrupt, nested too deep): its reason
            msg = "".join(c if c.isprintable() else "?" for c in " ".join(str(e).split()))[:300]
            return ProvenanceReport(str(path), "unreadable", f"cannot read the C2PA manifest: {msg}")
        # not an MP4/MOV, whatever its name says (a WebM or an MKV named .mp4, or no video at all): it can hold no
        # manifest the SDK reads; the probe below tells a video, which then goes on to the watermark, from the rest
        reader = None
        report.message = "no C2PA manifest (not an MP4/MOV container)"
    if reader is not None:
        with reader:
            m = reader.get_active_manifest() or {}
            status, failed = _status(reader)
        report = ProvenanceReport(str(path), status, {"valid-trusted": "signed by a trusted signer",
                                  "valid-untrusted-signer": "valid signature; signer not in the trust anchors",
                                  "tampered": "manifest does not match the file: " + ", ".join(failed)}[status],
                                  failed, m.get("label"), _claims(m))
    if report.status == "absent":  # nothing said about the file yet: is it a video at all?
        from daas.video import probe

        try:
            probe(path)
        except VideoError as e:
            return ProvenanceReport(str(path), "unreadable", without_path(str(e), path))
    if watermark == "always" or (watermark == "auto" and report.status in ("absent", "tampered")):
        _watermark_and_recover(report, path, store, identity, trust_anchors)
    return report


def _watermark_and_recover(report: ProvenanceReport, path: Path, store, identity, trust_anchors) -> None:
    from .identity import IdentityError, load_identity
    from .store import ManifestStore

    try:
        identity = identity or load_identity(create=False)
    except IdentityError as e:
        report.watermark = {"detected": None, "note": f"watermark not checked: {e}"}
        return
    if store is None:  # the default store, when this machine has one (verifying does not create it)
        from .store import default_store_path

        store = ManifestStore() if default_store_path().exists() else None
    elif not hasattr(store, "matches_by_binding"):
        store = ManifestStore(store)
    # the payloads of every mark we signed: the detector's known-payload test finds marks too weak to decode blind
    known = [v for v in map(_payload_of, store.values(wm.ALG)) if v is not None] if hasattr(store, "values") else []
    try:
        det = wm.detect_file(path, wm.WatermarkKey(identity.watermark_key()), known=known)
    except DaasError as e:
        if report.status == "absent":
            report.status, report.message = "unreadable", without_path(str(e), path)
        report.watermark = {"detected": None, "note": str(e)}
        return
    report.watermark = det.to_dict()
    if det.payload is None or store is None:
        return
    value = soft_binding_value(det.payload)
    for match in store.matches_by_binding(wm.ALG, value)["matches"]:
        data = store.get_manifest(match["manifestId"])
        if data is None:
            continue
        report.recovered = _check_recovered(data, value, trust_anchors)
        report.message += "; manifest recovered via soft binding"
        return


def _check_recovered(data: bytes, value: str, trust_anchors) -> dict:
    """Read a stored manifest store on its own (its signature is checked; the hard binding cannot be, the file
    differs) and check that its soft binding carries the value we decoded (C2PA 2.2 section 18.10.5.1)."""
    from c2pa import Reader

    with Reader("application/c2pa", io.BytesIO(data), context=_context(trust_anchors)) as r:
        m = r.get_active_manifest() or {}
        results = (r.get_validation_results() or {}).get("activeManifest") or {}
    claims = _claims(m)
    values = [b.get("value") for b in (claims.get("soft_binding") or {}).get("blocks", [])]
    sig_ok = any(s.get("code") == "claimSignature.validated" for s in results.get("success", []))
    trusted = any(s.get("code") == "signingCredential.trusted" for s in results.get("success", []))
    return {"manifest_label": m.get("label"), "claims": claims, "soft_binding_match": value in values,
            "signature": "trusted" if sig_ok and trusted else "valid" if sig_ok else "invalid"}


def protect_video(frames, fps: float, dst: str | os.PathLike, *, params: dict, software_agent: dict,
                  overwrite: bool = False, identity=None, store=None,
                  source_type: str = "trainedAlgorithmicMedia") -> dict:
    """Watermark `frames` with a fresh 32-bit payload, write the MP4, sign it with C2PA, keep the manifest in
    the store (keyed by the payload) and return {path, payload, manifest_label, signer, ...}.

    The unsigned intermediate lives in a temporary file beside `dst`; `dst` appears whole or not at all.
    """
    import tempfile

    import numpy as np

    from daas.video import write_video

    from .identity import load_identity
    from .store import ManifestStore

    frames = np.asarray(frames)
    if frames.ndim != 4 or frames.shape[-1] != 3 or frames.dtype != np.uint8 or len(frames) == 0:
        raise VideoError(f"frames must be uint8 [T, H, W, 3] with T >= 1, got {frames.dtype} {list(frames.shape)}")
    dst = Path(dst)
    from daas.fileio import check_writable

    check_writable(dst, overwrite)
    _mime(dst)
    identity = identity or load_identity()
    key = wm.WatermarkKey(identity.watermark_key())
    payload = secrets.randbits(wm.PAYLOAD_BITS)
    marked = wm.embed(frames, key, payload)
    soft = soft_binding_assertion(payload, len(frames) / fps)
    with tempfile.TemporaryDirectory(dir=dst.parent, prefix=".daas-") as tmp:
        plain = Path(tmp) / ("unsigned" + dst.suffix)
        write_video(plain, marked, fps)
        out = sign_video(plain, dst, {"title": dst.name, "software_agent": software_agent, "params": params,
                                      "source_type": source_type, "soft_binding": soft, "watermarked": True},
                         identity=identity, overwrite=overwrite)
    summary = {"path": str(dst), "params": params, "software_agent": software_agent, "signer": out["signer"]}
    try:
        store = store if store is not None else ManifestStore()
        store = store if hasattr(store, "put") else ManifestStore(store)
        store.put(out["manifest_label"], wm.ALG, soft["blocks"][0]["value"], out["manifest"], summary)
    except BaseException:
        dst.unlink(missing_ok=True)  # no output whose manifest could not be kept for recovery
        raise
    return {"path": str(dst), "payload": f"{payload:08x}", "watermark_alg": wm.ALG,
            "manifest_label": out["manifest_label"], "signer": out["signer"], "dev_identity": out["dev_identity"],
            "store": str(store.path), "frames": int(len(frames)), "fps": float(fps)}
