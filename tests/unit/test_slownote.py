"""The slow-source note reorders LAN registries for a while; a note others could write is ignored."""

import json
import os

from lanmirror.ops.resolve.slownote import LIFETIME, note_slow, reorder


def test_a_slow_registry_goes_last_for_the_notes_lifetime(tmp_path, monkeypatch):
    monkeypatch.setenv("LANMIRROR_CACHE", str(tmp_path))
    note_slow("a:5000", now=1000.0)
    assert reorder(["a:5000", "b:5000", "c:5000"], now=1001.0) == ["b:5000", "c:5000", "a:5000"]
    assert reorder(["a:5000", "b:5000"], now=1000.0 + LIFETIME + 1) == ["a:5000", "b:5000"]
    assert oct((tmp_path / "slow-sources.json").stat().st_mode & 0o777) == "0o600"


def test_a_note_others_could_write_is_ignored(tmp_path, monkeypatch):
    monkeypatch.setenv("LANMIRROR_CACHE", str(tmp_path))
    path = tmp_path / "slow-sources.json"
    path.write_text(json.dumps({"a:5000": 10**12}))
    path.chmod(0o666)
    assert reorder(["a:5000", "b:5000"]) == ["a:5000", "b:5000"]
    path.chmod(0o600)
    os.chown(path, 65534, 65534)
    assert reorder(["a:5000", "b:5000"]) == ["a:5000", "b:5000"]
    os.chown(path, os.getuid(), os.getgid())
    assert reorder(["a:5000", "b:5000"]) == ["b:5000", "a:5000"]
