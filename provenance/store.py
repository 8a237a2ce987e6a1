"""The manifest store: every manifest we sign, keyed by its soft binding (watermark alg + payload).

The interface mirrors the C2PA Soft Binding Resolution API (`GET /matches/byBinding?alg=&value=` ->
`{"matches": [{"manifestId": ...}]}`, `GET /manifests/{manifestId}` -> the manifest store bytes), so a
remote repository can later stand behind the same two methods. SQLite (stdlib) is the default backend:
one file, transactional, safe across processes.
"""
from __future__ import annotations

import json
import os
import sqlite3
import time
from pathlib import Path

from daas.errors import DaasError

_SCHEMA = """
CREATE TABLE IF NOT EXISTS manifests (
  manifest_id TEXT PRIMARY KEY,      -- the active manifest's label (urn:c2pa:...)
  alg TEXT NOT NULL,                 -- soft-binding algorithm identifier
  value TEXT NOT NULL,               -- soft-binding value (base64 payload, as in the manifest)
  manifest BLOB NOT NULL,            -- the signed manifest store (application/c2pa)
  summary TEXT NOT NULL,             -- JSON: the claims, for display without parsing the blob
  created REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS by_binding ON manifests (alg, value);
"""


class StoreError(DaasError):
    """The manifest store cannot be opened or written."""


def default_store_path() -> Path:
    from daas.paths import daas_home

    return Path(os.environ.get("DAAS_MANIFEST_STORE") or daas_home() / "manifests.sqlite")


class ManifestStore:
    def __init__(self, path: str | os.PathLike | None = None):
        self.path = Path(path) if path else default_store_path()
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, timeout=30)
            self._db.executescript(_SCHEMA)
        except sqlite3.Error as e:
            raise StoreError(f"manifest store {self.path}: {e}") from None

    def put(self, manifest_id: str, alg: str, value: str, manifest: bytes, summary: dict | None = None) -> None:
        try:
            with self._db:
                self._db.execute("INSERT OR REPLACE INTO manifests VALUES (?, ?, ?, ?, ?, ?)",
                                 (manifest_id, alg, value, manifest, json.dumps(summary or {}), time.time()))
        except sqlite3.Error as e:
            raise StoreError(f"manifest store {self.path}: {e}") from None

    def matches_by_binding(self, alg: str, value: str) -> dict:
        """As `GET /matches/byBinding`: {"matches": [{"manifestId": ..., "similarityScore": 100}]}, newest first."""
        rows = self._db.execute("SELECT manifest_id FROM manifests WHERE alg = ? AND value = ? ORDER BY created DESC",
                                (alg, value)).fetchall()
        return {"matches": [{"manifestId": r[0], "similarityScore": 100} for r in rows]}

    def values(self, alg: str) -> list[str]:
        """Every distinct soft-binding value stored for `alg` (the watermark's known-payload test reads them)."""
        return [r[0] for r in self._db.execute("SELECT DISTINCT value FROM manifests WHERE alg = ?", (alg,))]

    def get_manifest(self, manifest_id: str) -> bytes | None:
        """As `GET /manifests/{manifestId}`: the manifest store bytes (application/c2pa), or None."""
        row = self._db.execute("SELECT manifest FROM manifests WHERE manifest_id = ?", (manifest_id,)).fetchone()
        return bytes(row[0]) if row else None

    def get_summary(self, manifest_id: str) -> dict | None:
        row = self._db.execute("SELECT summary FROM manifests WHERE manifest_id = ?", (manifest_id,)).fetchone()
        return json.loads(row[0]) if row else None

    def __len__(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM manifests").fetchone()[0]

    def close(self) -> None:
        self._db.close()
