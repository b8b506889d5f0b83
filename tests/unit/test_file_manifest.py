"""The local file manifest (NBS-FORMAT.md 5.3, 14.16)."""

import fcntl
import os
from pathlib import Path

import pytest

from nbs.addr import EMPTY_ADDR, Addr
from nbs.errors import ManifestError, VersionMismatchError
from nbs.file_manifest import FileManifest, format_manifest, parse_manifest
from nbs.manifest import ManifestContents, TableSpec, generate_lock_hash
from nbs.stats import Stats


def clobber(d: Path, text: str) -> None:
    (d / "LOCK").write_bytes(b"")
    (d / "manifest").write_text(text)


def try_clobber(d: Path, text: str) -> bool:
    """Overwrite the manifest only if LOCK can be taken without waiting (Go's manifest_clobber)."""
    fd = os.open(d / "LOCK", os.O_RDWR | os.O_CREAT)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        (d / "manifest").write_text(text)
        return True
    finally:
        os.close(fd)


def test_load_if_exists(tmp_path: Path) -> None:
    fm = FileManifest(str(tmp_path))
    assert fm.parse_if_exists(Stats()) is None
    lock, root, table = Addr.of(b"jerk"), Addr.of(b"new root"), Addr.of(b"table1")
    clobber(tmp_path, f"4:0:{lock}:{root}:{table}:0")
    got = fm.parse_if_exists(Stats())
    assert got == ManifestContents("0", lock, root, (TableSpec(table, 0),))


def test_load_if_exists_holds_lock(tmp_path: Path) -> None:
    lock, root, table = Addr.of(b"locker"), Addr.of(b"new root"), Addr.of(b"table1")
    clobber(tmp_path, f"4:7.18:{lock}:{root}:{table}:0")
    attempts = []

    def hook() -> None:
        attempts.append(try_clobber(tmp_path, f"4:0:{Addr.of(b'nope')}:{Addr.of(b'other')}"))

    got = FileManifest(str(tmp_path)).parse_if_exists(Stats(), read_hook=hook)
    assert attempts == [False]
    assert got == ManifestContents("7.18", lock, root, (TableSpec(table, 0),))


def test_update_wont_clobber_old_version(tmp_path: Path) -> None:
    clobber(tmp_path, f"4:0:{EMPTY_ADDR}:{EMPTY_ADDR}")
    with pytest.raises(VersionMismatchError):
        FileManifest(str(tmp_path)).update(EMPTY_ADDR, ManifestContents(), Stats())
    assert (tmp_path / "manifest").read_text() == f"4:0:{EMPTY_ADDR}:{EMPTY_ADDR}"


def test_update_empty(tmp_path: Path) -> None:
    fm = FileManifest(str(tmp_path))
    one, two = Addr(b"\x01" * 20), Addr(b"\x02" * 20)
    got = fm.update(EMPTY_ADDR, ManifestContents("7.18", one), Stats())
    assert got.lock == one and got.root == EMPTY_ADDR and got.specs == ()
    again = FileManifest(str(tmp_path)).parse_if_exists(Stats())
    assert again == ManifestContents("7.18", one)
    got = fm.update(one, ManifestContents("7.18", two), Stats())
    assert got.lock == two and got.specs == ()


def test_update(tmp_path: Path) -> None:
    fm = FileManifest(str(tmp_path))
    first = ManifestContents("7.18", Addr.of(b"locker"), Addr.of(b"new root"), (TableSpec(Addr.of(b"a"), 3),))
    clobbered = []
    got = fm.update(EMPTY_ADDR, first, Stats(),
                    write_hook=lambda: clobbered.append(try_clobber(tmp_path, "4:7.18:x:y")))
    assert clobbered == [False] and got == first
    assert (tmp_path / "manifest").read_text() == format_manifest(first)

    rejected = ManifestContents("7.18", Addr.of(b"locker 2"), Addr.of(b"new root 2"))
    assert fm.update(EMPTY_ADDR, rejected, Stats()) == first
    assert fm.update(first.lock, rejected, Stats()) == rejected

    jerk = ManifestContents("7.18", Addr.of(b"jerk"), rejected.root, (TableSpec(Addr.of(b"table1"), 1),))
    clobber(tmp_path, format_manifest(jerk))
    third = ManifestContents("7.18", Addr.of(b"locker 3"), Addr.of(b"new root 3"))
    assert fm.update(rejected.lock, third, Stats()) == jerk


def test_missing_manifest_with_nonzero_last_lock_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ManifestError, match="vanished"):
        FileManifest(str(tmp_path)).update(Addr.of(b"x"), ManifestContents(), Stats())


def test_format_matches_spec_example() -> None:
    root = Addr.of(b"hello2")
    specs = (TableSpec(Addr.parse("uog0qvhml7hmloq557j88qfgeptqpo13"), 3),)
    contents = ManifestContents("7.18", generate_lock_hash(root, specs), root, specs)
    assert str(contents.lock) == "7vr0tp8gqkgthupu2ti24sdu6ob7duoc"
    assert format_manifest(contents) == (
        "4:7.18:7vr0tp8gqkgthupu2ti24sdu6ob7duoc:h8fh8lbvbq671mj9eo8u4cbofkhmv6kp:uog0qvhml7hmloq557j88qfgeptqpo13:3")
    assert str(generate_lock_hash(EMPTY_ADDR, ())) == "qabbh4ljkub4nk6ch0nsfg5uii5mnfce"


def test_committed_manifest_and_no_temp_files_left(tmp_path: Path) -> None:
    FileManifest(str(tmp_path)).update(EMPTY_ADDR, ManifestContents("7.18", Addr.of(b"l")), Stats())
    assert sorted(os.listdir(tmp_path)) == ["LOCK", "manifest"]
    assert (tmp_path / "manifest").stat().st_mode & 0o777 == 0o600
    assert not (tmp_path / "manifest").read_bytes().endswith(b"\n")


GOOD = f"4:7.18:{EMPTY_ADDR}:{EMPTY_ADDR}"


@pytest.mark.parametrize("text,error", [
    ("", ManifestError), ("4:7.18:x", ManifestError), (GOOD + ":abc", ManifestError),
    ("5" + GOOD[1:], VersionMismatchError), (f"4:7.18:{EMPTY_ADDR}:notahash", ManifestError),
    (f"4:7.18:bad:{EMPTY_ADDR}", ManifestError), (GOOD + f":{EMPTY_ADDR}:x1", ManifestError),
    (GOOD + f":{EMPTY_ADDR}:-1", ManifestError), (GOOD + f":{EMPTY_ADDR}:4294967296", ManifestError),
    (GOOD + "\n", ManifestError), (GOOD + ":short:1", ManifestError),
])
def test_malformed_manifests_rejected(text: str, error: type[Exception]) -> None:
    with pytest.raises(error):
        parse_manifest(text, "m")


def test_non_utf8_manifest_rejected(tmp_path: Path) -> None:
    (tmp_path / "LOCK").write_bytes(b"")
    (tmp_path / "manifest").write_bytes(b"4:\xff\xfe")
    with pytest.raises(ManifestError):
        FileManifest(str(tmp_path)).parse_if_exists(Stats())
