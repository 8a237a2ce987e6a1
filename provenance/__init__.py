"""Provenance: C2PA manifests signed into every output, a keyed watermark bound to them, verification and
manifest recovery. Public face:

    protect_video(frames, fps, dst, params=..., software_agent=...) -> dict   # generator pipeline
    sign_video(src, dst, info) -> dict                                       # any MP4/MOV
    verify_video(path, trust_anchors=None, store=None) -> ProvenanceReport   # `daas verify`, the scanner
    load_identity(), init_dev_identity(), ManifestStore, watermark (embed / detect)
"""
from __future__ import annotations

__version__ = "0.1.0"

_LAZY = {
    "protect_video": "manifest", "sign_video": "manifest", "verify_video": "manifest",
    "ProvenanceReport": "manifest", "load_identity": "identity", "init_dev_identity": "identity",
    "Identity": "identity", "ManifestStore": "store",
}
__all__ = [*_LAZY, "watermark"]


def __getattr__(name):  # keeps `import provenance` cheap: c2pa and cv2 load on first use
    import importlib

    if name in _LAZY:
        return getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
    if name == "watermark":
        return importlib.import_module(".watermark", __name__)
    raise AttributeError(name)
