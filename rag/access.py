"""Who may read and write which knowledge base: ``RAG_API_KEY`` plus a keys file of named, scoped keys.

A server has at most one operator key (``RAG_API_KEY``: every base, read, write and manage) and, when
``RAG_KEYS_FILE`` names one, a keys file (``rag keys add|list|revoke``) of named keys, each with the
bases it may read and those it may write (``*``: all, including bases made later) and whether it may
create, rename and delete bases. Only a hash of each key is stored; a key is shown once, when made.

Without any key configured the server is open (a workstation). With ``RAG_API_KEY`` alone, reading
stays open and writing needs the key (as before keys files existed). With a keys file, a request
without a key may do nothing: every base is behind a key. A base a grant may not read is treated as
absent (its name is never shown to that grant).

The keys file is re-read when it changes on disk (its size and modification time), so a key revoked
with ``rag keys revoke`` is refused by a running server at its next request, and the chat's sessions
opened with it end too (a session remembers the key's name, not its grant).
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import hmac
import json
import secrets
import sys
import threading
import time
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rag.errors import AccessDeniedError, ConfigError, KnowledgeBaseNotFoundError, RagError
from rag.files import write_atomic

ALL = "*"
SESSION_COOKIE = "rag_session"
SESSION_SECONDS = 12 * 3600  # a chat session lasts a working day; the key box opens a new one
MAX_SESSIONS = 10_000  # sessions live in memory: the oldest go first beyond this
KEY_PREFIX = "rag_"
ADMIN = "admin"
ANONYMOUS = "anonymous"
_FORMAT = 1


@dataclass(frozen=True)
class Grant:
    """What one caller may do: read and write these bases (``*``: every base), and manage bases."""

    name: str
    read: frozenset[str] = frozenset()
    write: frozenset[str] = frozenset()
    manage: bool = False

    def may_read(self, base: str) -> bool:
        return ALL in self.read or base in self.read or self.may_write(base)

    def may_write(self, base: str) -> bool:
        return ALL in self.write or base in self.write

    def readable(self, names: Iterable[str]) -> list[str]:
        """The names this grant may see, in the order given."""
        return [n for n in names if self.may_read(n)]

    def describe(self) -> dict[str, Any]:
        return {"name": self.name, "read": sorted(self.read), "write": sorted(self.write), "manage": self.manage}


class KeyRequiredError(AccessDeniedError):
    """No key where one is needed, or a wrong, revoked or expired one: HTTP 401 (with ``WWW-Authenticate``)."""

    http_status = 401


class KeysUnavailableError(RagError):
    """The keys file cannot be read (damaged): every key is refused, and a client is told no more than that."""

    http_status = 503


OPEN = Grant(ANONYMOUS, frozenset({ALL}), frozenset({ALL}), manage=True)  # no key configured anywhere
READ_ONLY = Grant(ANONYMOUS, frozenset({ALL}))  # RAG_API_KEY alone: reading stays open
NOTHING = Grant(ANONYMOUS)  # a keys file is set: every base is behind a key
OPERATOR = Grant(ADMIN, frozenset({ALL}), frozenset({ALL}), manage=True)


def key_hash(key: str) -> str:
    """The stored form of a key. Keys are 256-bit random tokens, so one SHA-256 is enough (no password
    stretching needed: there is nothing to guess)."""
    return "sha256:" + hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def scope(values: Iterable[str] | str | None) -> frozenset[str]:
    """``"news,policy"``, ``["news"]`` or ``"*"`` as a set of base names (checked)."""
    from rag.bases import check_name  # noqa: PLC0415 - rag.bases imports the pipeline; access stays light

    items = values.split(",") if isinstance(values, str) else list(values or [])
    names = {str(v).strip() for v in items if str(v).strip()}
    return frozenset(n if n == ALL else check_name(n, existing=True) for n in names)


@dataclass
class KeyRecord:
    name: str
    hash: str
    read: frozenset[str] = frozenset()
    write: frozenset[str] = frozenset()
    manage: bool = False
    created: str = ""
    revoked: str | None = None

    def grant(self) -> Grant:
        return Grant(self.name, self.read, self.write, self.manage)

    def public(self) -> dict[str, Any]:
        """What ``rag keys list`` shows: never the hash."""
        return {"name": self.name, "read": sorted(self.read), "write": sorted(self.write), "manage": self.manage,
                "created": self.created, "revoked": self.revoked}

    def to_json(self) -> dict[str, Any]:
        return {**self.public(), "hash": self.hash}


@dataclass
class KeyRing:
    """The keys file: named keys with their scopes, read again whenever the file changes."""

    path: Path
    _records: dict[str, KeyRecord] = field(default_factory=dict)
    _stamp: tuple[int, int] | None = None
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def records(self) -> list[KeyRecord]:
        self._refresh()
        return list(self._records.values())

    def find(self, key: str) -> KeyRecord | None:
        """The live (not revoked) record whose hash is ``key``'s, compared in constant time."""
        wanted = key_hash(key)
        found = None
        for record in self.records():
            if hmac.compare_digest(record.hash, wanted) and record.revoked is None:
                found = record
        return found

    def named(self, name: str) -> KeyRecord | None:
        self._refresh()
        record = self._records.get(name)
        return record if record is not None and record.revoked is None else None

    def add(self, name: str, read: Iterable[str] | str = (), write: Iterable[str] | str = (),
            manage: bool = False) -> str:
        """A new key ``name`` with these scopes; returns the key itself (shown once, stored hashed)."""
        name = _key_name(name)
        read, write = scope(read), scope(write)
        with self._writing():
            if name in self._records:
                raise ConfigError("keys.exists", name=name)
            token = KEY_PREFIX + secrets.token_urlsafe(32)
            self._records[name] = KeyRecord(name, key_hash(token), read, write, bool(manage),
                                            time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()))
            self._save()
        return token

    def revoke(self, name: str) -> KeyRecord:
        """Mark ``name`` revoked (kept in the file, so ``list`` shows when); refused from the next request."""
        with self._writing():
            record = self._records.get(name)
            if record is None:
                raise ConfigError("keys.unknown", name=name, names=", ".join(self._records) or "(none)")
            if record.revoked is None:
                record.revoked = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
                self._save()
        return record

    def rename_base(self, old: str, new: str) -> None:
        """Scopes that named ``old`` name ``new`` (a renamed base keeps its readers and writers)."""
        self._rescope(lambda names: (names - {old}) | {new} if old in names else names)

    def drop_base(self, base: str) -> None:
        """No scope names ``base`` any more (it was deleted: a base made later under its name starts unshared)."""
        self._rescope(lambda names: names - {base})

    def widen(self, name: str, base: str) -> None:
        """Key ``name`` may read and write ``base`` too (the base it just made)."""
        with self._writing():
            record = self._records.get(name)
            if record is not None and record.revoked is None and not ({base, ALL} & record.write):
                record.read, record.write = record.read | {base}, record.write | {base}
                self._save()

    def _rescope(self, change: Any) -> None:
        """Every key's read and write scopes through ``change`` (a set of names to a set of names)."""
        with self._writing():
            changed = False
            for record in self._records.values():
                read, write = change(record.read), change(record.write)
                if (read, write) != (record.read, record.write):
                    record.read, record.write, changed = read, write, True
            if changed:
                self._save()

    @contextlib.contextmanager
    def _writing(self) -> Iterator[None]:
        """One change at a time, across processes too (an flock on ``<file>.lock``; ``rag keys`` and a server
        may change the file together), made to the file as it is now: without it, a server renaming a base
        could write back a key that ``rag keys revoke`` had just revoked."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path.with_name(self.path.name + ".lock"), "a", encoding="utf-8") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                with self._lock:
                    self._stamp = None  # read again, whatever the stamp says
                self._refresh()
                yield
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    # ---- the file ------------------------------------------------------------------------------
    def _refresh(self) -> None:
        with self._lock:
            try:
                st = self.path.stat()
            except FileNotFoundError:
                self._records, self._stamp = {}, None
                return
            stamp = (st.st_mtime_ns, st.st_size)
            if stamp == self._stamp:
                return
            self._records = _parse(self.path)
            self._stamp = stamp

    def _save(self) -> None:
        """Write the whole file atomically (a temporary file renamed over it), readable by its owner only."""
        with self._lock:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            body = {"format": _FORMAT, "keys": [r.to_json() for r in self._records.values()]}
            write_atomic(self.path, json.dumps(body, ensure_ascii=False, indent=2), mode=0o600)
            self._stamp = None  # read back on next use, with the new stamp


def _key_name(name: Any) -> str:
    if not isinstance(name, str) or not name.strip() or len(name) > 64 or not name.isprintable() \
            or not all(c.isalnum() or c in "_-.@" for c in name):
        raise ConfigError("keys.bad_name", name=str(name)[:80])
    if name in (ADMIN, ANONYMOUS):
        raise ConfigError("keys.reserved", name=name)
    return name


def _parse(path: Path) -> dict[str, KeyRecord]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        rows = data["keys"]
        records = {}
        for row in rows:
            record = KeyRecord(str(row["name"]), str(row["hash"]), frozenset(row.get("read") or ()),
                               frozenset(row.get("write") or ()), bool(row.get("manage")),
                               str(row.get("created") or ""), row.get("revoked"))
            records[record.name] = record
        return records
    except (OSError, ValueError, KeyError, TypeError) as exc:
        # a damaged keys file must not open the server: refuse every key until it is fixed
        raise ConfigError("keys.damaged", path=path, reason=f"{type(exc).__name__}: {exc}") from exc


class Access:
    """One server's access decisions: the operator key, the keys file, and the chat's sessions."""

    def __init__(self, api_key: str | None = None, keys_file: str | Path | None = None) -> None:
        self.api_key = (api_key or "").strip() or None
        self.ring = KeyRing(Path(keys_file)) if keys_file else None
        self._sessions: dict[str, tuple[str, float]] = {}  # token → (key name, expiry)
        self._lock = threading.Lock()

    @classmethod
    def from_settings(cls, settings: Any, api_key: str | None = None) -> Access:
        return cls(api_key if api_key is not None else settings.api_key, settings.keys_file or None)

    @property
    def keyed(self) -> bool:
        return bool(self.api_key or self.ring)

    @property
    def anonymous(self) -> Grant:
        if self.ring is not None:
            return NOTHING
        return READ_ONLY if self.api_key else OPEN

    def grant_for_key(self, supplied: str | None) -> Grant | None:
        """The grant of a bare key: the anonymous one for none, None for a wrong or revoked key."""
        supplied = (supplied or "").strip()
        if not supplied or not self.keyed:
            return self.anonymous  # an open server: OpenAI clients send some key, whatever it is
        if self.api_key and hmac.compare_digest(supplied.encode(), self.api_key.encode()):
            return OPERATOR
        record = self.ring.find(supplied) if self.ring is not None else None
        return record.grant() if record is not None else None

    def grant_of(self, headers: Mapping[str, str]) -> Grant | None:
        """The grant of a request: its key (``Authorization: Bearer``, ``X-API-Key``), else its chat session
        cookie, else anonymous. None: what it supplied is wrong, revoked or expired (answer 401)."""
        key = supplied_key(headers)
        if key:
            return self.grant_for_key(key)
        token = cookie(headers, SESSION_COOKIE)
        if token:
            return self.session_grant(token)
        return self.anonymous

    def caller(self, headers: Mapping[str, str]) -> Grant:
        """``grant_of`` for a server: a wrong, revoked or expired key is a ``KeyRequiredError`` (401); a
        damaged keys file a ``KeysUnavailableError`` (503) that names neither the file nor what is wrong in it
        (the operator's log does)."""
        return self._checked(lambda: self.grant_of(headers))

    def key_caller(self, key: str) -> Grant:
        """``caller`` for a bare key (``POST /api/session``)."""
        return self._checked(lambda: self.grant_for_key(key))

    def _checked(self, find: Any) -> Grant:
        """``find()``'s grant; none is a ``KeyRequiredError`` (see ``_reading_keys`` for a damaged file)."""
        grant = _reading_keys(find)
        if grant is None:
            raise KeyRequiredError("access.wrong_key")
        return grant

    # ---- the chat's sessions -------------------------------------------------------------------
    def open_session(self, grant: Grant) -> str:
        """A token for the chat's HttpOnly cookie; it stands for the key's name until it expires."""
        token = secrets.token_urlsafe(32)
        with self._lock:
            now = time.monotonic()
            self._sessions = {t: v for t, v in self._sessions.items() if v[1] > now}
            while len(self._sessions) >= MAX_SESSIONS:
                self._sessions.pop(next(iter(self._sessions)))
            self._sessions[token] = (grant.name, now + SESSION_SECONDS)
        return token

    def close_session(self, token: str) -> None:
        with self._lock:
            self._sessions.pop(token, None)

    def session_grant(self, token: str) -> Grant | None:
        with self._lock:
            entry = self._sessions.get(token)
        if entry is None or entry[1] <= time.monotonic():
            return None
        name = entry[0]
        if name == ADMIN:
            return OPERATOR if self.api_key else None
        if name == ANONYMOUS:
            return self.anonymous
        record = self.ring.named(name) if self.ring is not None else None
        return record.grant() if record is not None else None  # revoked since: the session ends

    # ---- the checks ----------------------------------------------------------------------------
    def require_read(self, grant: Grant, base: str) -> None:
        """Nothing if ``grant`` may read ``base``; else the same error as for a base that does not exist."""
        if not grant.may_read(base):
            raise KnowledgeBaseNotFoundError("kb.not_readable", name=base)

    def require_write(self, grant: Grant, base: str) -> None:
        self.require_read(grant, base)
        if not grant.may_write(base):
            raise AccessDeniedError("access.no_write", key=grant.name, name=base)

    def require_manage(self, grant: Grant) -> None:
        if not grant.manage:
            raise AccessDeniedError("access.no_manage", key=grant.name)

    def require_some_write(self, grant: Grant, names: Iterable[str]) -> None:
        """Nothing if ``grant`` may write one of the bases ``names`` (an upload, before its base is known);
        else 401 for a caller without a key on a keyed server, 403 for a key."""
        if any(grant.may_write(n) for n in names):
            return
        if grant.name == ANONYMOUS and self.keyed:
            raise KeyRequiredError("access.key_required")
        raise AccessDeniedError("access.no_write_any", key=grant.name)

    def check_keys(self) -> None:
        """``KeysUnavailableError`` when the keys file cannot be read (before a change whose scopes must follow)."""
        if self.ring is not None:
            _reading_keys(self.ring.records)

    def rename_base(self, old: str, new: str) -> None:
        if self.ring is not None:
            _reading_keys(lambda: self.ring.rename_base(old, new))

    def forget_base(self, name: str) -> None:
        """A deleted base leaves every scope (a new base of that name is not shared with its old readers)."""
        if self.ring is not None:
            _reading_keys(lambda: self.ring.drop_base(name))

    def made_base(self, grant: Grant, name: str) -> None:
        """The named key that made ``name`` may read and write it (the operator's and ``*`` keys already may)."""
        if self.ring is not None and grant.name not in (ADMIN, ANONYMOUS) and not grant.may_write(name):
            _reading_keys(lambda: self.ring.widen(grant.name, name))

    def view(self, bases: Any, grant: Grant) -> BasesView:
        """The knowledge bases ``bases`` (a ``rag.bases.KnowledgeBases``) as ``grant`` may see them."""
        return BasesView(bases, self, grant)


class BasesView:
    """The knowledge bases as one caller sees them: those it may not read are absent (never named, 404 as an
    absent base), writing one it may only read is 403, and a caller without a key where one is needed is
    told so (401). ``get``, ``get_many``, ``target``, ``names``, ``usable_names``, ``describe`` and ``folders``
    answer as ``KnowledgeBases``' do, for what the grant may read."""

    def __init__(self, bases: Any, access: Access, grant: Grant) -> None:
        self.bases = bases
        self.access = access
        self.grant = grant

    @property
    def default(self) -> Any:
        return self.bases.default

    def folders(self) -> list[Path]:
        return self.bases.folders()

    def names(self) -> list[str]:
        return self.grant.readable(self.bases.names())

    def usable_names(self) -> list[str]:
        return self.grant.readable(self.bases.usable_names())

    def describe(self) -> list[dict[str, Any]]:
        return [row for row in self.bases.describe() if self.grant.may_read(row["name"])]

    def require_key(self) -> None:
        """401 for a caller without a key on a server with one (``/v1``, ``/mcp``: a key always, when set)."""
        if self.grant.name == ANONYMOUS and self.access.keyed:
            raise KeyRequiredError("access.key_required")

    def require_manage(self) -> None:
        if not self.grant.manage:
            self.require_key()
            self.access.require_manage(self.grant)

    def absent(self, name: str) -> KnowledgeBaseNotFoundError:
        """The error for ``name`` absent or unreadable: the same, listing only what the grant may read."""
        return KnowledgeBaseNotFoundError("kb.unknown_hint", name=name, names=", ".join(self.names()) or "(none)")

    def readable(self, name: str | None) -> str:
        """``name`` (None: the default) checked as a name and readable by the grant, else the error."""
        from rag.bases import DEFAULT, check_name  # noqa: PLC0415 - rag.bases imports the pipeline; access stays light

        base = DEFAULT if name is None else check_name(name, existing=True)
        if not self.grant.may_read(base):
            self.require_key()
            raise self.absent(base)
        return base

    def writable(self, name: str | None) -> str:
        """``name`` readable (see ``readable``) and writable by the grant: 401 without a key, else 403."""
        base = self.readable(name)
        if not self.grant.may_write(base):
            self.require_key()
            self.access.require_write(self.grant, base)
        return base

    def get(self, name: str | None = None) -> Any:
        """The RAG of ``name`` (None: the default) if the grant may read it."""
        base = self.readable(name)
        try:
            return self.bases.get(None if name is None else base)
        except KnowledgeBaseNotFoundError:  # its message lists every base
            raise self.absent(base) from None

    def get_many(self, names: str | list[str] | None) -> list[tuple[str, Any]]:
        """``KnowledgeBases.get_many`` once each name is readable (checked before any base is opened)."""
        wanted = [names] if isinstance(names, str) else list(names or [None])
        for name in wanted[:21]:  # more is refused by get_many
            self.readable(name)
        try:
            return self.bases.get_many(names)
        except KnowledgeBaseNotFoundError as exc:  # its message lists every base
            raise self.absent(str(exc.params.get("name", ""))) from None

    def target(self, kb: str | list[str] | None) -> tuple[Any, list[tuple[str, Any]] | None]:
        if kb is None:
            return self.get(None), None
        named = self.get_many(kb)
        return named[0][1], named


def _reading_keys(step: Any) -> Any:
    """``step()``, a damaged keys file raised as ``KeysUnavailableError`` (503), which names neither the file nor
    what is wrong in it: the server's log (stderr) does."""
    try:
        return step()
    except ConfigError as exc:
        if exc.code != "keys.damaged":
            raise
        print(f"error: {exc}", file=sys.stderr)
        raise KeysUnavailableError("keys.unavailable") from None


def supplied_key(headers: Mapping[str, str]) -> str | None:
    """The key a request carries: ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``."""
    auth = headers.get("authorization") or ""
    scheme, _, token = auth.partition(" ")
    if scheme.lower() == "bearer" and token.strip():
        return token.strip()
    return (headers.get("x-api-key") or "").strip() or None


def cookie(headers: Mapping[str, str], name: str) -> str | None:
    for part in (headers.get("cookie") or "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


__all__ = ["ADMIN", "ALL", "ANONYMOUS", "SESSION_COOKIE", "SESSION_SECONDS", "Access", "BasesView", "Grant", "KeyRecord",
           "KeyRequiredError", "KeyRing", "KeysUnavailableError", "cookie", "key_hash", "scope", "supplied_key"]
