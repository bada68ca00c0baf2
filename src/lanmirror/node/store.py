"""The node cache on disk: blobs by digest, each written whole and verified before its rename,
with a sidecar that lets a restart (or a later hit) tell a file altered on disk from the one that
was written, and least-recently-used eviction under a size cap.

    DIR/blobs/sha256/<hex>        the bytes, read-only once renamed into place
    DIR/blobs/sha256/<hex>.json   size, inode, mtime and ctime at the rename; when last used
    DIR/tmp/                      fills in progress: never served as a cached file, and emptied at
                                  start (a killed mirror leaves no partial blob behind)

A file is served only while its inode, size, mtime and ctime are those recorded; ctime cannot be
set back from user space, so any write to the file after the rename shows. A mismatch means the
bytes are hashed again before anything is served: kept if they still match, else removed."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from lanmirror.name import validate_digest

log = logging.getLogger("lanmirror.node")

TOUCH_EVERY = 60.0  # seconds between writes of a blob's last-used time to its sidecar
HEADROOM = 64 << 20  # left free on the disk: sidecars, and whatever else shares it
FULL_FOR = 60.0  # after a write found the disk full, no new fill for this long (clients get pass-through)


@dataclass
class Entry:
    size: int
    used: float
    stamp: tuple[int, int, int, int]  # inode, size, mtime_ns, ctime_ns at the rename
    saved_used: float = 0.0


def _stamp(st: os.stat_result) -> tuple[int, int, int, int]:
    return (st.st_ino, st.st_size, st.st_mtime_ns, st.st_ctime_ns)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return "sha256:" + h.hexdigest()


class BlobStore:
    def __init__(self, root: Path, limit: int) -> None:
        self.root = root
        self.limit = limit
        self.blobs = root / "blobs" / "sha256"
        self.tmp = root / "tmp"
        for d in (root, self.blobs, self.tmp):
            d.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._lock = threading.Lock()
        self._entries: dict[str, Entry] = {}
        self._reserved = 0
        self.evicted = 0
        self.tampered = 0
        self.refusal = ""  # why the last reserve() said no, for the one warning
        self._full_until = 0.0
        self.scan()

    # -- start -------------------------------------------------------------------------------

    def scan(self) -> None:
        """What a restart finds: partial fills are removed, blobs without a readable sidecar too."""
        for leftover in self.tmp.iterdir():
            leftover.unlink(missing_ok=True)
            log.info("removed a partial blob left by an earlier run: %s", leftover.name)
        for side in self.blobs.glob("*.json"):
            blob = side.with_suffix("")
            try:
                meta = json.loads(side.read_text())
                entry = Entry(int(meta["size"]), float(meta["used"]), tuple(meta["stamp"]))  # type: ignore[arg-type]
                entry.saved_used = entry.used
            except (OSError, ValueError, KeyError, TypeError):
                side.unlink(missing_ok=True)
                blob.unlink(missing_ok=True)
                continue
            if not blob.exists():
                side.unlink(missing_ok=True)
                continue
            self._entries["sha256:" + blob.name] = entry
        for blob in self.blobs.iterdir():
            if blob.suffix != ".json" and "sha256:" + blob.name not in self._entries:
                blob.unlink(missing_ok=True)

    # -- reading -----------------------------------------------------------------------------

    def path(self, digest: str) -> Path:
        return self.blobs / validate_digest(digest).split(":", 1)[1]

    def lookup(self, digest: str) -> Path | None:
        """The cached file of `digest`, checked against its sidecar (hashed again when the file
        changed since it was written); None when not cached or no longer right."""
        with self._lock:
            entry = self._entries.get(digest)
        if entry is None:
            return None
        path = self.path(digest)
        try:
            st = path.stat()
        except OSError:
            self._forget(digest)
            return None
        if _stamp(st) != entry.stamp:
            if st.st_size != entry.size or sha256_file(path) != digest:
                log.warning("cached blob %s was altered on disk: removed, read again from upstream", digest[:19])
                self.tampered += 1
                self._forget(digest)
                path.unlink(missing_ok=True)
                return None
            entry.stamp = _stamp(st)  # same bytes (copied back, say): the new stamp is the one to keep
            self._save(digest, entry)
        now = time.time()
        entry.used = now
        if now - entry.saved_used > TOUCH_EVERY:
            try:
                self._save(digest, entry)
            except OSError as exc:  # a full disk must not turn a hit into an error; the time is in memory
                log.debug("last-used time of %s not saved: %s", digest[:19], exc)
        return path

    def size_of(self, digest: str) -> int | None:
        with self._lock:
            entry = self._entries.get(digest)
        return entry.size if entry else None

    @property
    def used_bytes(self) -> int:
        with self._lock:
            return sum(e.size for e in self._entries.values())

    # -- writing -----------------------------------------------------------------------------

    def reserve(self, size: int) -> bool:
        """Room for a blob of `size` under the cap, evicting the least recently used; False when it
        cannot fit (bigger than the cap, or the disk itself lacks the room), with the reason in
        `refusal`. The cap is ours to keep; the disk is shared, so its free space is asked each time."""
        if time.monotonic() < self._full_until:
            self.refusal = f"its disk was found full (no space left on device) less than {FULL_FOR:.0f} s ago"
            return False
        if size > self.limit:
            self.refusal = f"it is bigger than the cap of {self.limit >> 20} MB"
            return False
        with self._lock:
            victims: list[str] = []
            used = sum(e.size for e in self._entries.values()) + self._reserved
            for digest, entry in sorted(self._entries.items(), key=lambda kv: kv[1].used):
                if used + size <= self.limit:
                    break
                victims.append(digest)
                used -= entry.size
            if used + size > self.limit:
                self.refusal = f"the cap of {self.limit >> 20} MB is taken by fills in progress"
                return False
            for digest in victims:
                del self._entries[digest]
            self._reserved += size
        for digest in victims:
            self.path(digest).unlink(missing_ok=True)
            self.path(digest).with_suffix(".json").unlink(missing_ok=True)
            self.evicted += 1
            log.info("evicted %s (least recently used) to make room", digest[:19])
        free = shutil.disk_usage(self.root).free
        if free < size + HEADROOM:
            self.release(size)
            self.refusal = f"its disk has {free >> 20} MB free"
            return False
        return True

    def disk_full(self) -> None:
        """A fill's write failed with ENOSPC (the disk filled after reserve() looked, by other fills
        or other programs): no new fill for FULL_FOR seconds, so that retries are served straight
        from upstream instead of filling and failing again."""
        self._full_until = time.monotonic() + FULL_FOR

    def release(self, size: int) -> None:
        with self._lock:
            self._reserved = max(0, self._reserved - size)

    def temp(self, digest: str) -> Path:
        return self.tmp / f"{digest.split(':', 1)[1]}.{os.getpid()}.{threading.get_ident()}.{time.monotonic_ns()}"

    def admit(self, digest: str, temp: Path, size: int) -> Path:
        """Move a verified temp file into place (the caller hashed every byte of it)."""
        final = self.path(digest)
        os.chmod(temp, 0o400)
        os.replace(temp, final)
        entry = Entry(size, time.time(), _stamp(final.stat()))
        with self._lock:
            self._entries[digest] = entry
            self._reserved = max(0, self._reserved - size)
        self._save(digest, entry)
        return final

    def _save(self, digest: str, entry: Entry) -> None:
        side = self.path(digest).with_suffix(".json")
        tmp = side.with_name(side.name + ".tmp")
        tmp.write_text(json.dumps({"size": entry.size, "used": entry.used, "stamp": list(entry.stamp)}))
        os.replace(tmp, side)
        entry.saved_used = entry.used

    def _forget(self, digest: str) -> None:
        with self._lock:
            self._entries.pop(digest, None)
        self.path(digest).with_suffix(".json").unlink(missing_ok=True)
