"""The node cache on its own: verified admission, least-recently-used eviction that survives a
restart, partial fills removed at start, an altered file caught before it is served."""

from __future__ import annotations

import hashlib
import os
import time

import pytest

from lanmirror.cmd.argtypes import byte_size
from lanmirror.node.store import BlobStore

MB = 1 << 20


def put(store: BlobStore, data: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(data).hexdigest()
    assert store.reserve(len(data))
    temp = store.temp(digest)
    temp.write_bytes(data)
    store.admit(digest, temp, len(data))
    return digest


def test_least_recently_used_goes_first_and_the_order_survives_a_restart(tmp_path):
    store = BlobStore(tmp_path, 3 * MB)
    a, b, c = (put(store, bytes([i]) * MB) for i in range(3))
    store.lookup(a)  # a is now the most recently used
    time.sleep(0.01)
    store._save(a, store._entries[a])  # persisted as a later hit would be
    again = BlobStore(tmp_path, 3 * MB)
    assert again.lookup(b) is not None
    d = put(again, b"d" * MB)  # no room: the least recently used (c) goes
    assert again.lookup(c) is None and again.lookup(a) is not None and again.lookup(d) is not None
    assert again.evicted == 1


def test_a_blob_bigger_than_the_cap_is_refused_not_admitted(tmp_path):
    store = BlobStore(tmp_path, 2 * MB)
    assert store.reserve(3 * MB) is False
    assert "bigger than the cap of 2 MB" in store.refusal
    assert store.reserve(MB) is True


def test_a_disk_found_full_refuses_new_fills_for_a_while_and_frees_their_reservation(tmp_path, monkeypatch):
    import lanmirror.node.store as store_module

    store = BlobStore(tmp_path, 10 * MB)
    assert store.reserve(MB)
    store.release(MB)
    store.disk_full()
    assert store.reserve(MB) is False and "no space left on device" in store.refusal
    assert store._reserved == 0
    monkeypatch.setattr(store_module, "FULL_FOR", 0.0)
    store.disk_full()
    assert store.reserve(MB) is True  # the pause is over: fills again


def test_partial_fills_and_orphans_are_removed_at_start(tmp_path):
    store = BlobStore(tmp_path, 10 * MB)
    good = put(store, b"x" * 1000)
    (tmp_path / "tmp" / "deadbeef.1.2.3").write_bytes(b"half a blob")
    (tmp_path / "blobs" / "sha256" / ("ab" * 32)).write_bytes(b"no sidecar")
    again = BlobStore(tmp_path, 10 * MB)
    assert list((tmp_path / "tmp").iterdir()) == []
    assert not (tmp_path / "blobs" / "sha256" / ("ab" * 32)).exists()
    assert again.lookup(good) is not None


def test_an_altered_file_is_caught_and_a_touched_but_same_one_is_kept(tmp_path):
    store = BlobStore(tmp_path, 10 * MB)
    data = os.urandom(100_000)
    digest = put(store, data)
    path = store.path(digest)
    path.chmod(0o600)
    os.utime(path, ns=(1, 1))  # stat changed, bytes the same: hashed again and kept
    assert store.lookup(digest) == path and store.tampered == 0
    with open(path, "r+b") as f:
        f.seek(500)
        f.write(b"\x00" if data[500] else b"\x01")
    st = path.stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns))  # mtime put back: ctime still tells
    assert store.lookup(digest) is None and store.tampered == 1 and not path.exists()


@pytest.mark.parametrize("text, size", [("200G", 200 << 30), ("512M", 512 << 20), ("1.5T", int(1.5 * (1 << 40))),
                                        ("2GiB", 2 << 30), ("1048576", 1 << 20)])
def test_cache_sizes_read_as_df_prints_them(text, size):
    assert byte_size(text) == size


@pytest.mark.parametrize("text", ["", "lots", "1K", "-5G"])
def test_bad_cache_sizes_are_refused(text):
    import argparse

    with pytest.raises(argparse.ArgumentTypeError):
        byte_size(text)
