"""SQLite storage of an annotation project, and the rules that assign items to annotators.

An *item* is one modality of one clip. The rules, enforced inside ``BEGIN IMMEDIATE``
transactions (one writer at a time, also across processes such as ``add-annotator`` while the
server runs):

- **k votes per item.** An item is handed out only while its votes plus the live leases of
  open assignments stay under ``votes_per_item``. A lease lasts ``lease_seconds``; an annotator
  who comes back after it lapsed may still answer if the item has room, else gets 410.
- **Isolation.** ``exposures`` has the primary key ``(annotator, clip)``: once an annotator is
  shown a clip in one modality, no row can show them that clip in another. A trigger refuses
  any vote whose annotator was not exposed to that clip in that modality.
- **One vote per item** (``UNIQUE(annotator, item, repeat)``): a retry of the same answer is
  acknowledged as a duplicate, a different answer is refused.
- **Repeated items** (``gold_every`` > 0): after every ``gold_every`` answers an annotator gets
  one of their earlier items again, unannounced; the pair measures self-consistency. Repeats
  never count as votes of the item.

Durability: WAL journal with ``synchronous=FULL`` — a commit is fsynced before the server
acknowledges it, so an acknowledged vote survives ``kill -9`` and power loss
(https://www.sqlite.org/wal.html, https://www.sqlite.org/pragma.html#pragma_synchronous).
Tokens are stored as sha256 digests only. The module is a little over 600 lines on purpose:
every rule lives next to the transaction that enforces it, so they can be checked together.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import sqlite3
import time
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sdme.annotate import AnnotateError
from sdme.config import ConfigError, from_mapping, to_dict
from sdme.schema import MODALITIES

SCHEMA_VERSION = 1
_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS annotators (
  id INTEGER PRIMARY KEY,
  name TEXT NOT NULL UNIQUE,
  role TEXT NOT NULL CHECK (role IN ('annotator', 'owner', 'imported')),
  token_hash TEXT UNIQUE,
  active INTEGER NOT NULL DEFAULT 1,
  created_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS items (
  id INTEGER PRIMARY KEY,
  clip_id TEXT NOT NULL,
  modality TEXT NOT NULL,
  clip_label TEXT NOT NULL DEFAULT '',
  active INTEGER NOT NULL DEFAULT 1,
  n_votes INTEGER NOT NULL DEFAULT 0,
  UNIQUE (clip_id, modality));
CREATE TABLE IF NOT EXISTS exposures (
  annotator_id INTEGER NOT NULL REFERENCES annotators(id),
  clip_id TEXT NOT NULL,
  modality TEXT NOT NULL,
  PRIMARY KEY (annotator_id, clip_id));
CREATE TABLE IF NOT EXISTS assignments (
  id TEXT PRIMARY KEY,
  annotator_id INTEGER NOT NULL REFERENCES annotators(id),
  item_id INTEGER NOT NULL REFERENCES items(id),
  repeat INTEGER NOT NULL DEFAULT 0,
  status TEXT NOT NULL DEFAULT 'open'
    CHECK (status IN ('open', 'voted', 'skipped', 'expired')),
  served_at REAL NOT NULL,
  lease_until REAL NOT NULL,
  UNIQUE (annotator_id, item_id, repeat));
CREATE INDEX IF NOT EXISTS assignments_item ON assignments (item_id, status);
CREATE TABLE IF NOT EXISTS votes (
  id INTEGER PRIMARY KEY,
  annotator_id INTEGER NOT NULL REFERENCES annotators(id),
  item_id INTEGER NOT NULL REFERENCES items(id),
  label TEXT NOT NULL,
  repeat INTEGER NOT NULL DEFAULT 0,
  assignment_id TEXT UNIQUE REFERENCES assignments(id),
  served_at REAL,
  created_at REAL NOT NULL,
  source TEXT NOT NULL DEFAULT 'sdme',
  source_ref TEXT,
  UNIQUE (annotator_id, item_id, repeat),
  UNIQUE (source, source_ref));
CREATE INDEX IF NOT EXISTS votes_item ON votes (item_id, repeat);
CREATE TRIGGER IF NOT EXISTS votes_isolated BEFORE INSERT ON votes
WHEN NOT EXISTS (SELECT 1 FROM exposures e JOIN items i ON i.id = NEW.item_id
                 WHERE e.annotator_id = NEW.annotator_id AND e.clip_id = i.clip_id
                   AND e.modality = i.modality)
BEGIN SELECT RAISE(ABORT, 'isolation: annotator not exposed to this clip in this modality'); END;
CREATE TRIGGER IF NOT EXISTS votes_count AFTER INSERT ON votes WHEN NEW.repeat = 0
BEGIN UPDATE items SET n_votes = n_votes + 1 WHERE id = NEW.item_id; END;
"""

# Items an annotator may get: active, of a collected modality, of a clip they have not seen,
# with votes plus live leases (open, unexpired, non-repeat assignments) under k.
_ELIGIBLE = """
    FROM items i LEFT JOIN (
      SELECT item_id, COUNT(*) AS n FROM assignments
      WHERE status = 'open' AND repeat = 0 AND lease_until > :now GROUP BY item_id
    ) l ON l.item_id = i.id
    WHERE i.active = 1 AND i.modality IN ({marks})
      AND NOT EXISTS (SELECT 1 FROM exposures e WHERE e.annotator_id = :a
                      AND e.clip_id = i.clip_id)
      AND i.n_votes + COALESCE(l.n, 0) < :k"""
# A per-annotator permutation of item ids, in SQL arithmetic: (id * m + c) mod a prime.
_PRIME = 2_147_483_647


@dataclass(frozen=True)
class AnnotateSettings:
    """How votes are collected (stored in the project; ``serve``/``prepare`` options change it).

    Attributes:
        votes_per_item: Votes wanted per (clip, modality).
        modalities: Modalities to collect, out of text, audio, vision.
        gold_every: After every N answers, one earlier item again (0: never).
        lease_seconds: How long a served item stays reserved for its annotator.
    """

    votes_per_item: int = 3
    modalities: tuple[str, ...] = MODALITIES
    gold_every: int = 0
    lease_seconds: int = 900

    def __post_init__(self) -> None:
        if self.votes_per_item < 1:
            raise ValueError("votes_per_item must be at least 1")
        unknown = [m for m in self.modalities if m not in MODALITIES]
        if unknown or not self.modalities or len(set(self.modalities)) != len(self.modalities):
            raise ValueError(f"modalities must be distinct names out of {', '.join(MODALITIES)}")
        if self.gold_every < 0 or self.lease_seconds < 10:
            raise ValueError("gold_every must be >= 0 and lease_seconds >= 10")


@dataclass(frozen=True)
class Principal:
    """Whoever a token belongs to."""

    id: int
    name: str
    role: str  # annotator or owner


@dataclass(frozen=True)
class Assignment:
    """An item served to an annotator; ``id`` is the opaque handle the browser sees."""

    id: str
    annotator_id: int
    clip_id: str
    modality: str
    repeat: bool
    status: str


@dataclass(frozen=True)
class VoteRecord:
    """One stored vote, as export and the dashboard read it."""

    clip_id: str
    modality: str
    clip_label: str
    annotator_id: int
    annotator: str
    label: str
    repeat: bool
    served_at: float | None
    created_at: float
    source: str


@dataclass(frozen=True)
class ImportedVote:
    """A vote from another tool (Label Studio), keyed by ``source_ref`` for idempotent imports."""

    annotator: str
    clip_id: str
    modality: str
    label: str
    created_at: float
    source_ref: str


class VoteError(AnnotateError):
    """A refused answer; ``status`` is the HTTP status the app returns."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _order(seed: str, annotator_id: int) -> dict[str, int]:
    """The constants of an annotator's own random order of items (keyed by the project seed)."""
    digest = hashlib.blake2b(f"{seed}:{annotator_id}".encode(), digest_size=16).digest()
    return {"om": 1 + int.from_bytes(digest[:8], "big") % (_PRIME - 1),
            "oc": int.from_bytes(digest[8:], "big") % _PRIME}


class Store:
    """The project database at ``path`` (created on first use)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.seed = ""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            with self._connect() as db:
                db.execute("PRAGMA journal_mode=WAL")
                db.executescript(_SCHEMA)
                version = self._meta(db, "schema_version")
                if version is None:
                    db.execute("INSERT INTO meta VALUES ('schema_version', ?)",
                               (str(SCHEMA_VERSION),))
                    db.execute("INSERT INTO meta VALUES ('seed', ?)", (secrets.token_hex(8),))
                elif int(version) != SCHEMA_VERSION:
                    raise AnnotateError(f"{self.path}: database schema {version}, this toolkit "
                                        f"reads {SCHEMA_VERSION}")
                self.seed = self._meta(db, "seed") or ""
        except sqlite3.Error as exc:
            raise AnnotateError(f"{self.path}: cannot use the database ({exc})") from None

    # --- connections ---------------------------------------------------------------------------

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        try:
            db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        except sqlite3.Error as exc:
            raise AnnotateError(f"{self.path}: cannot open the database ({exc})") from exc
        try:
            db.row_factory = sqlite3.Row
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA foreign_keys=ON")
            yield db
        finally:
            db.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``), committed on success."""
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            try:
                yield db
            except BaseException:
                db.execute("ROLLBACK")
                raise
            db.execute("COMMIT")

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str) -> str | None:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else row[0]

    def get_meta(self, key: str) -> str | None:
        with self._connect() as db:
            return self._meta(db, key)

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as db:
            db.execute("INSERT INTO meta VALUES (?, ?) ON CONFLICT(key) DO UPDATE "
                       "SET value = excluded.value", (key, value))

    # --- settings ------------------------------------------------------------------------------

    def settings(self, **overrides: object) -> AnnotateSettings:
        """Stored settings with ``overrides`` (None values ignored); raises AnnotateError."""
        stored = json.loads(self.get_meta("settings") or "{}")
        given = {k: v for k, v in overrides.items() if v is not None}
        try:
            return from_mapping(AnnotateSettings, stored, what="annotation settings", **given)
        except ConfigError as exc:
            raise AnnotateError(str(exc)) from None

    def save_settings(self, settings: AnnotateSettings) -> None:
        self.set_meta("settings", json.dumps(to_dict(settings)))

    # --- people --------------------------------------------------------------------------------

    def add_person(self, name: str, role: str = "annotator", *, rotate: bool = False) -> str:
        """Creates an annotator (or the owner) and returns their new token.

        Raises:
            AnnotateError: a bad name, or the name exists and ``rotate`` is False.
        """
        name = name.strip()
        if role != "imported" and (not name or len(name) > 64 or ":" in name
                                   or not name.isprintable()):
            raise AnnotateError(f"annotator name {name!r}: use 1-64 printable characters "
                                "without ':'")
        token = secrets.token_urlsafe(24)
        with self.transaction() as db:
            row = db.execute("SELECT id, role FROM annotators WHERE name = ?", (name,)).fetchone()
            if row is not None and not rotate:
                raise AnnotateError(f"annotator {name!r} exists; pass --new-link to replace "
                                    "their link (the old one stops working)")
            if row is not None:
                if row["role"] != role:
                    raise AnnotateError(f"{name!r} is a {row['role']}, not a {role}")
                db.execute("UPDATE annotators SET token_hash = ?, active = 1 WHERE id = ?",
                           (hash_token(token), row["id"]))
            else:
                db.execute("INSERT INTO annotators (name, role, token_hash, created_at) "
                           "VALUES (?, ?, ?, ?)", (name, role, hash_token(token), time.time()))
        return token

    def revoke(self, name: str) -> None:
        with self.transaction() as db:
            if db.execute("UPDATE annotators SET active = 0 WHERE name = ? AND role = "
                          "'annotator'", (name,)).rowcount == 0:
                raise AnnotateError(f"no annotator named {name!r}")
            db.execute("UPDATE assignments SET status = 'expired' WHERE status = 'open' AND "
                       "annotator_id = (SELECT id FROM annotators WHERE name = ?)", (name,))

    def authenticate(self, token: str | None) -> Principal | None:
        if not token or len(token) > 200:
            return None
        with self._connect() as db:
            row = db.execute("SELECT id, name, role FROM annotators WHERE token_hash = ? AND "
                             "active = 1 AND role IN ('annotator', 'owner')",
                             (hash_token(token),)).fetchone()
        return None if row is None else Principal(row["id"], row["name"], row["role"])

    def people(self) -> list[dict[str, object]]:
        """Every annotator with their counts (no tokens)."""
        with self._connect() as db:
            rows = db.execute("""
                SELECT p.id, p.name, p.role, p.active, p.created_at,
                  (SELECT COUNT(*) FROM votes v WHERE v.annotator_id = p.id AND v.repeat = 0)
                    AS votes,
                  (SELECT COUNT(*) FROM votes v WHERE v.annotator_id = p.id AND v.repeat = 1)
                    AS repeats,
                  (SELECT COUNT(*) FROM assignments a WHERE a.annotator_id = p.id
                    AND a.status = 'skipped') AS skipped
                FROM annotators p WHERE p.role != 'owner' ORDER BY p.id""").fetchall()
        return [dict(r) for r in rows]

    # --- items ---------------------------------------------------------------------------------

    def sync_items(self, available: Iterable[tuple[str, str, str]]) -> int:
        """Makes ``(clip_id, modality, clip_label)`` the active items; others are deactivated.

        Returns:
            The number of active items.
        """
        wanted = list(available)
        with self.transaction() as db:
            db.execute("UPDATE items SET active = 0")
            db.executemany("INSERT INTO items (clip_id, modality, clip_label) VALUES (?, ?, ?) "
                           "ON CONFLICT(clip_id, modality) DO UPDATE SET active = 1, "
                           "clip_label = excluded.clip_label", wanted)
        return len(wanted)

    # --- work ----------------------------------------------------------------------------------

    def _assignment(self, db: sqlite3.Connection, annotator_id: int,
                    assignment_id: str) -> sqlite3.Row | None:
        return db.execute("""
            SELECT a.id, a.annotator_id, a.item_id, a.repeat, a.status, a.served_at,
                   a.lease_until, i.clip_id, i.modality, i.active
            FROM assignments a JOIN items i ON i.id = a.item_id
            WHERE a.id = ? AND a.annotator_id = ?""", (assignment_id, annotator_id)).fetchone()

    @staticmethod
    def _as_assignment(row: sqlite3.Row) -> Assignment:
        return Assignment(id=row["id"], annotator_id=row["annotator_id"], clip_id=row["clip_id"],
                          modality=row["modality"], repeat=bool(row["repeat"]),
                          status=row["status"])

    def assignment(self, annotator_id: int, assignment_id: str) -> Assignment | None:
        """An assignment of this annotator (None for anyone else's, or an unknown id)."""
        if not assignment_id or len(assignment_id) > 100:
            return None
        with self._connect() as db:
            row = self._assignment(db, annotator_id, assignment_id)
        return None if row is None else self._as_assignment(row)

    @staticmethod
    def _has_room(db: sqlite3.Connection, row: sqlite3.Row, k: int, now: float) -> bool:
        """Whether a non-repeat vote on ``row``'s item may still be accepted."""
        votes = db.execute("SELECT n_votes FROM items WHERE id = ?",
                           (row["item_id"],)).fetchone()[0]
        if row["status"] == "open" and row["lease_until"] > now:
            return votes < k  # a live lease was counted when it was granted
        others = db.execute("SELECT COUNT(*) FROM assignments WHERE item_id = ? AND repeat = 0 "
                            "AND status = 'open' AND lease_until > ? AND id != ?",
                            (row["item_id"], now, row["id"])).fetchone()[0]
        return votes + others < k

    def next_item(self, annotator_id: int, now: float | None = None) -> Assignment | None:
        """The item to show this annotator now: their open one, a repeat that is due, or new.

        Returns None when nothing is left for them.
        """
        now = time.time() if now is None else now
        s = self.settings()
        with self.transaction() as db:
            for row in db.execute("""
                    SELECT a.*, i.clip_id, i.modality, i.active FROM assignments a
                    JOIN items i ON i.id = a.item_id
                    WHERE a.annotator_id = ? AND a.status = 'open' ORDER BY a.served_at""",
                                  (annotator_id,)).fetchall():
                if row["active"] and (row["repeat"] or self._has_room(db, row,
                                                                       s.votes_per_item, now)):
                    db.execute("UPDATE assignments SET lease_until = ? WHERE id = ?",
                               (now + s.lease_seconds, row["id"]))
                    return self._as_assignment(row)
                db.execute("UPDATE assignments SET status = 'expired' WHERE id = ?", (row["id"],))

            repeat = self._due_repeat(db, annotator_id, s.gold_every, _order(self.seed,
                                                                                annotator_id))
            if repeat is not None:
                item_id, is_repeat = repeat, 1
            else:
                item_id, is_repeat = self._eligible(db, annotator_id, now, s), 0
                if item_id is None:
                    return None
            item = db.execute("SELECT clip_id, modality FROM items WHERE id = ?",
                              (item_id,)).fetchone()
            db.execute("INSERT INTO exposures VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                       (annotator_id, item["clip_id"], item["modality"]))
            assignment_id = secrets.token_urlsafe(12)
            db.execute("INSERT INTO assignments (id, annotator_id, item_id, repeat, served_at, "
                       "lease_until) VALUES (?, ?, ?, ?, ?, ?)",
                       (assignment_id, annotator_id, item_id, is_repeat, now,
                        now + s.lease_seconds))
        return Assignment(id=assignment_id, annotator_id=annotator_id, clip_id=item["clip_id"],
                          modality=item["modality"], repeat=bool(is_repeat), status="open")

    def _eligible(self, db: sqlite3.Connection, annotator_id: int, now: float,
                  s: AnnotateSettings, *, count: bool = False) -> int | None:
        """The item this annotator gets next (None: none), or with ``count`` how many clips
        they could still get.

        Fullest items first (kappa becomes computable sooner), then the annotator's own random
        order, which randomises which clips and modalities each annotator sees.
        """
        params: dict[str, object] = {"a": annotator_id, "now": now, "k": s.votes_per_item,
                                     **_order(self.seed, annotator_id)}
        params.update({f"m{j}": m for j, m in enumerate(s.modalities)})
        where = _ELIGIBLE.format(marks=", ".join(f":m{j}" for j in range(len(s.modalities))))
        if count:
            return db.execute(f"SELECT COUNT(DISTINCT i.clip_id) {where}", params).fetchone()[0]
        row = db.execute(f"""SELECT i.id {where}
            ORDER BY i.n_votes + COALESCE(l.n, 0) DESC, (i.id * :om + :oc) % {_PRIME}
            LIMIT 1""", params).fetchone()
        return None if row is None else row[0]

    @staticmethod
    def _due_repeat(db: sqlite3.Connection, annotator_id: int, every: int,
                    order: dict[str, int]) -> int | None:
        """An earlier item of this annotator to show again, when one is due."""
        if every <= 0:
            return None
        answered = db.execute("SELECT COUNT(*) FROM votes WHERE annotator_id = ? AND repeat = 0",
                              (annotator_id,)).fetchone()[0]
        served = db.execute("SELECT COUNT(*) FROM assignments WHERE annotator_id = ? AND "
                            "repeat = 1", (annotator_id,)).fetchone()[0]
        if answered // every <= served:
            return None
        row = db.execute(f"""
            SELECT v.item_id FROM votes v JOIN items i ON i.id = v.item_id
            WHERE v.annotator_id = :a AND v.repeat = 0 AND i.active = 1
              AND v.id != (SELECT MAX(id) FROM votes WHERE annotator_id = :a AND repeat = 0)
              AND NOT EXISTS (SELECT 1 FROM assignments r WHERE r.annotator_id = :a
                              AND r.item_id = v.item_id AND r.repeat = 1)
            ORDER BY (v.item_id * :om + :oc) % {_PRIME} LIMIT 1""",
                         {"a": annotator_id, **order}).fetchone()
        return None if row is None else row[0]

    def vote(self, annotator_id: int, assignment_id: str, label: str,
             taxonomy: Sequence[str], now: float | None = None) -> bool:
        """Records an answer; returns True when it repeats one already recorded (a retry).

        Raises:
            VoteError: 422 label outside the taxonomy; 404 not this annotator's item; 409
                already answered differently or skipped; 410 the item got its votes from others
                after this annotator's reservation lapsed.
        """
        now = time.time() if now is None else now
        if label not in taxonomy:
            raise VoteError(422, f"label {label!r} is not in the taxonomy "
                                 f"({', '.join(taxonomy)})")
        k = self.settings().votes_per_item
        with self.transaction() as db:
            row = self._assignment(db, annotator_id, assignment_id or "")
            if row is None:
                raise VoteError(404, "no such item for you")
            if row["status"] == "voted":
                previous = db.execute("SELECT label FROM votes WHERE assignment_id = ?",
                                      (row["id"],)).fetchone()[0]
                if previous == label:
                    return True
                raise VoteError(409, f"already answered ({previous}); answers cannot be changed")
            if row["status"] == "skipped":
                raise VoteError(409, "this item was skipped")
            if not row["active"] or (not row["repeat"] and not self._has_room(db, row, k, now)):
                db.execute("UPDATE assignments SET status = 'expired' WHERE id = ?", (row["id"],))
                raise VoteError(410, "this item got its votes from others while you were away")
            db.execute("INSERT INTO votes (annotator_id, item_id, label, repeat, assignment_id, "
                       "served_at, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)",
                       (annotator_id, row["item_id"], label, row["repeat"], row["id"],
                        row["served_at"], now))
            db.execute("UPDATE assignments SET status = 'voted' WHERE id = ?", (row["id"],))
        return False

    def skip(self, annotator_id: int, assignment_id: str) -> None:
        """Marks an item as skipped; it is not offered to this annotator again.

        Raises:
            VoteError: 404 not this annotator's item; 409 already answered.
        """
        with self.transaction() as db:
            row = self._assignment(db, annotator_id, assignment_id or "")
            if row is None:
                raise VoteError(404, "no such item for you")
            if row["status"] == "voted":
                raise VoteError(409, "already answered")
            db.execute("UPDATE assignments SET status = 'skipped' WHERE id = ?", (row["id"],))

    def progress(self, annotator_id: int, now: float | None = None) -> dict[str, int]:
        """One annotator's own counts, and how many items they could still get (at most one
        per clip they have not seen)."""
        now = time.time() if now is None else now
        s = self.settings()
        with self._connect() as db:
            count = db.execute("""
                SELECT SUM(status = 'voted' AND repeat = 0), SUM(status = 'voted' AND repeat = 1),
                       SUM(status = 'skipped'), SUM(status = 'open')
                FROM assignments WHERE annotator_id = ?""", (annotator_id,)).fetchone()
            eligible = self._eligible(db, annotator_id, now, s, count=True)
        answered, repeats, skipped, open_ = (int(c or 0) for c in count)
        return {"answered": answered + repeats, "skipped": skipped,
                "remaining": eligible + open_}

    # --- reading and importing -----------------------------------------------------------------

    def votes(self) -> list[VoteRecord]:
        """Every vote, in the order recorded."""
        with self._connect() as db:
            rows = db.execute("""
                SELECT i.clip_id, i.modality, i.clip_label, v.annotator_id, p.name, v.label,
                       v.repeat, v.served_at, v.created_at, v.source
                FROM votes v JOIN items i ON i.id = v.item_id
                JOIN annotators p ON p.id = v.annotator_id ORDER BY v.id""").fetchall()
        return [VoteRecord(*tuple(r)[:6], bool(r[6]), r[7], r[8], r[9]) for r in rows]

    def items(self) -> list[tuple[str, str, str]]:
        """The active items as ``(clip_id, modality, clip_label)``."""
        with self._connect() as db:
            return [tuple(r) for r in db.execute(
                "SELECT clip_id, modality, clip_label FROM items WHERE active = 1 ORDER BY id")]

    def open_leases(self, now: float | None = None) -> int:
        now = time.time() if now is None else now
        with self._connect() as db:
            return db.execute("SELECT COUNT(*) FROM assignments WHERE status = 'open' AND "
                              "lease_until > ?", (now,)).fetchone()[0]

    def import_votes(self, source: str, votes: Sequence[ImportedVote]) -> dict[str, list[str]]:
        """Adds votes from another tool in one transaction; safe to run twice on one file.

        A vote for an item that does not exist is an error (nothing is imported). A vote that
        would show one annotator a clip in a second modality is left out, as is a second vote
        by one annotator on one item; both are reported.

        Returns:
            ``{"imported": [...], "already": [...], "left_out": [...]}``, one line per vote.
        """
        report: dict[str, list[str]] = {"imported": [], "already": [], "left_out": []}
        with self.transaction() as db:
            items = {(r["clip_id"], r["modality"]): r["id"] for r in db.execute(
                "SELECT id, clip_id, modality FROM items WHERE active = 1")}
            missing = sorted({f"{v.clip_id}/{v.modality}" for v in votes
                              if (v.clip_id, v.modality) not in items})
            if missing:
                raise AnnotateError(f"{len(missing)} item(s) are not in this corpus: "
                                    f"{', '.join(missing[:5])}{' ...' if len(missing) > 5 else ''}")
            for v in sorted(votes, key=lambda v: v.created_at):
                what = f"{v.source_ref} ({v.annotator}, {v.clip_id}/{v.modality})"
                if db.execute("SELECT 1 FROM votes WHERE source = ? AND source_ref = ?",
                              (source, v.source_ref)).fetchone():
                    report["already"].append(what)
                    continue
                db.execute("INSERT INTO annotators (name, role, created_at) VALUES (?, "
                           "'imported', ?) ON CONFLICT(name) DO NOTHING",
                           (v.annotator, time.time()))
                person = db.execute("SELECT id FROM annotators WHERE name = ?",
                                    (v.annotator,)).fetchone()[0]
                db.execute("INSERT INTO exposures VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                           (person, v.clip_id, v.modality))
                seen = db.execute("SELECT modality FROM exposures WHERE annotator_id = ? AND "
                                  "clip_id = ?", (person, v.clip_id)).fetchone()[0]
                item_id = items[(v.clip_id, v.modality)]
                if seen != v.modality:
                    report["left_out"].append(f"{what}: this annotator already labelled the "
                                              f"clip in {seen}")
                    continue
                if db.execute("SELECT 1 FROM votes WHERE annotator_id = ? AND item_id = ? AND "
                              "repeat = 0", (person, item_id)).fetchone():
                    report["left_out"].append(f"{what}: a second vote by this annotator")
                    continue
                db.execute("INSERT INTO votes (annotator_id, item_id, label, created_at, source, "
                           "source_ref) VALUES (?, ?, ?, ?, ?, ?)",
                           (person, item_id, v.label, v.created_at, source, v.source_ref))
                report["imported"].append(what)
        return report


__all__ = ["AnnotateSettings", "Assignment", "ImportedVote", "Principal", "Store", "VoteError",
           "VoteRecord", "hash_token"]
