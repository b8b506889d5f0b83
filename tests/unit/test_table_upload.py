"""Receiving a table in verified parts (``nbs.table_upload``) and a session's uploads (``nbsd.uploads``)."""

from __future__ import annotations

import gc
import os
import random
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from pathlib import Path

import pytest

from nbs.addr import Addr, compute_addr
from nbs.chunk_source import ChunkSource, EmptyChunkSource
from nbs.errors import CorruptTableError, UploadBusyError, UploadError, UploadMemoryFullError
from nbs.factory import new_local_store, new_memory_store
from nbs.file_table_persister import TABLE_TEMP_PREFIX, FSTablePersister
from nbs import table_upload
from nbs.stats import Stats
from nbs.store import NomsBlockStore
from nbs.table_index import TableIndex
from tests.record_parts import TablePart, table_name, table_parts
from nbs.table_upload import TableUpload
from nbs.table_writer import build_table
from nbs.upload_memory import UPLOAD_MEMORY
from nbsclient import protocol as p
from nbsd.uploads import MAX_UPLOADS, SessionUploads


def chunks_of(count: int, seed: int = 3) -> list[bytes]:
    rng = random.Random(seed)
    return [rng.randbytes(300) if i % 2 else (b"row %d " % i) * 40 for i in range(count)]


def parts_of(chunks: list[bytes], target: int = 8 << 10) -> tuple[list[bytes], list[TablePart]]:
    addrs = [compute_addr(c) for c in chunks]
    return addrs, list(table_parts(addrs, chunks, target))


def send(upload: TableUpload, part: TablePart, **changes: object) -> None:
    fields: dict[str, object] = {"seq": part.seq, "offset": part.offset, "pieces": [bytes(p) for p in part.pieces],
                                 "addrs": b"".join(part.addrs), "lengths": part.lengths}
    fields.update(changes)
    upload.add_part(**fields)  # type: ignore[arg-type]


def temp_files(directory: Path) -> list[str]:
    return [name for name in os.listdir(directory) if name.startswith(TABLE_TEMP_PREFIX)]


@pytest.mark.parametrize("make_store", [lambda d: new_local_store(str(d)), lambda d: new_memory_store()],
                         ids=["file", "memory"])
def test_parts_in_any_order_make_the_table_a_direct_write_makes(
        tmp_path: Path, make_store: Callable[[Path], NomsBlockStore]) -> None:
    chunks = chunks_of(1000)
    addrs, parts = parts_of(chunks, 30 << 10)
    assert len(parts) > 3 and sum(len(p.pieces) > 1 for p in parts)  # parts span batches and end inside them
    store = make_store(tmp_path)
    upload = store.receive_table()
    for part in random.Random(1).sample(parts, len(parts)):
        send(upload, part)
    spec = store.add_received(upload, table_name(addrs), len(addrs))
    expected = build_table(zip(addrs, chunks))
    assert spec.name == expected.name and spec.chunk_count == len(chunks)
    assert store.get_many(addrs) == dict(zip(addrs, chunks))
    assert store.commit(addrs[0], store.root())
    if isinstance(store._persister, FSTablePersister):
        assert (tmp_path / str(spec.name)).read_bytes() == expected.data
        assert not temp_files(tmp_path)


def test_file_is_byte_identical_to_a_direct_stores_table(tmp_path: Path) -> None:
    chunks = chunks_of(300, seed=9)
    direct_dir, upload_dir = tmp_path / "direct", tmp_path / "upload"
    direct_dir.mkdir()
    upload_dir.mkdir()
    direct = new_local_store(str(direct_dir))
    addrs = direct.put_many(chunks)
    assert direct.commit(addrs[0], direct.root())
    (table,) = [name for name in os.listdir(direct_dir) if len(name) == 32]
    store = new_local_store(str(upload_dir))
    upload = store.receive_table()
    for part in parts_of(chunks, 4 << 10)[1]:
        send(upload, part)
    spec = store.add_received(upload, table_name(addrs), len(addrs))
    assert str(spec.name) == table
    assert (upload_dir / table).read_bytes() == (direct_dir / table).read_bytes()


def corrupt_record(part: TablePart) -> bytes:
    data = bytearray(b"".join(part.pieces))
    data[part.lengths[0] - 1] ^= 0xFF  # the first record's CRC
    return bytes(data)


@pytest.mark.parametrize("damage", ["address", "crc", "claimed size"])
def test_a_record_that_lies_is_refused_and_the_upload_discarded(tmp_path: Path, damage: str) -> None:
    chunks = chunks_of(200)
    addrs, parts = parts_of(chunks)
    store = new_local_store(str(tmp_path))
    upload = store.receive_table()
    send(upload, parts[0])
    assert temp_files(tmp_path)
    bad = parts[1]
    if damage == "address":
        wrong = bytearray(b"".join(bad.addrs))
        wrong[5] ^= 1
        changes: dict[str, object] = {"addrs": bytes(wrong)}
    elif damage == "crc":
        changes = {"pieces": [corrupt_record(bad)]}
    else:  # a tiny record claiming a huge chunk: refused before anything is allocated
        record = b"\xff\xff\xff\x7f\x00"
        changes = {"pieces": [record + compute_crc(record)], "lengths": [len(record) + 4], "addrs": bad.addrs[0]}
    with pytest.raises(CorruptTableError):
        send(upload, bad, **changes)
    assert not temp_files(tmp_path)
    with pytest.raises(UploadError, match="discarded"):
        send(upload, parts[2])
    with pytest.raises(UploadError):
        store.add_received(upload, table_name(addrs), len(addrs))
    assert store.has_many(addrs) == set(addrs)


def compute_crc(data: bytes) -> bytes:
    import crc32c

    return crc32c.crc32c(data).to_bytes(4, "big")


def test_parts_that_do_not_fit_together_are_refused(tmp_path: Path) -> None:
    chunks = chunks_of(200)
    addrs, parts = parts_of(chunks)
    store = new_local_store(str(tmp_path))

    twice = store.receive_table()
    send(twice, parts[0])
    with pytest.raises(UploadError, match="twice"):
        send(twice, parts[0])

    shifted = store.receive_table()
    send(shifted, parts[0])
    with pytest.raises(UploadError, match="neighbours"):
        send(shifted, parts[1], offset=parts[1].offset + 1)

    gap = store.receive_table()
    send(gap, parts[0])
    send(gap, parts[2])
    with pytest.raises(UploadError, match="missing"):
        store.add_received(gap, table_name(addrs), len(addrs))

    misnamed = store.receive_table()
    for part in parts:
        send(misnamed, part)
    with pytest.raises(UploadError, match="not"):
        store.add_received(misnamed, table_name(addrs[::-1]), len(addrs))

    untiled = store.receive_table()
    with pytest.raises(UploadError, match="tile"):
        send(untiled, parts[0], pieces=[b"".join(parts[0].pieces) + b"\0"])
    assert not temp_files(tmp_path)
    assert store.table_names() == frozenset()


def test_discard_removes_the_temp_file_and_refuses_later_parts(tmp_path: Path) -> None:
    addrs, parts = parts_of(chunks_of(200))
    store = new_local_store(str(tmp_path))
    upload = store.receive_table()
    send(upload, parts[0])
    assert len(temp_files(tmp_path)) == 1
    upload.discard()
    upload.discard()
    assert not temp_files(tmp_path)
    with pytest.raises(UploadError):
        send(upload, parts[1])


def test_session_uploads_cap_and_remembered_end(tmp_path: Path) -> None:
    chunks = chunks_of(200)
    addrs, parts = parts_of(chunks)
    store = new_local_store(str(tmp_path))
    uploads = SessionUploads()
    first = uploads.begin(store.receive_table())
    uploads.add_part(first, **{k: v for k, v in vars(parts[0]).items() if k in ("seq", "offset")},
                     pieces=[bytes(p) for p in parts[0].pieces], addrs=b"".join(parts[0].addrs),
                     lengths=parts[0].lengths)
    assert len(temp_files(tmp_path)) == 1
    later = [uploads.begin(store.receive_table()) for _ in range(MAX_UPLOADS)]
    assert len(uploads) == MAX_UPLOADS and not temp_files(tmp_path)  # the oldest was discarded
    with pytest.raises(UploadError, match="no upload"):
        uploads.add_part(first, 1, 0, [b"x"], b"", [1])

    upload_id = later[0]
    for part in parts:
        uploads.add_part(upload_id, part.seq, part.offset, [bytes(p) for p in part.pieces], b"".join(part.addrs),
                         part.lengths)

    def finish(upload: TableUpload) -> object:
        return store.add_received(upload, table_name(addrs), len(addrs))

    spec = uploads.end(upload_id, finish, 1.0)  # type: ignore[arg-type]
    assert uploads.end(upload_id, finish, 1.0) == spec  # type: ignore[arg-type]  # a resent end: the same answer
    assert spec.name == Addr(table_name(addrs))
    uploads.discard_all()
    assert len(uploads) == 0 and not temp_files(tmp_path)


def test_parts_behind_a_failed_one_are_told_its_cause_and_type() -> None:
    """A part in flight behind the one that ended its upload may be answered first: it must carry that part's
    cause and error type (a busy refusal stays busy, so the client backs off), not "no upload"."""
    store, uploads = new_memory_store(), SessionUploads()
    one_mib = [os.urandom(1 << 20)]
    before = UPLOAD_MEMORY.limit
    UPLOAD_MEMORY.limit = UPLOAD_MEMORY.held + (5 << 20) // 2
    try:
        holder, refused, alone = (uploads.begin(store.receive_table()) for _ in range(3))
        uploads.add_chunks(holder, 0, one_mib[0], [1 << 20])
        uploads.add_chunks(alone, 0, one_mib[0], [1 << 20])
        with pytest.raises(UploadMemoryFullError):  # the others hold 2 MiB of 2.5: refused for now
            uploads.add_chunks(refused, 0, one_mib[0], [1 << 20])
        with pytest.raises(UploadMemoryFullError, match=f"upload {refused} was discarded: tables held in memory"):
            uploads.add_chunks(refused, 1, one_mib[0], [1 << 20])
        uploads.discard(holder)
        two_more = os.urandom(2 << 20)
        with pytest.raises(UploadError, match="limit of") as never:  # 3 MiB of its own: refused for good
            uploads.add_chunks(alone, 1, two_more, [1 << 20, 1 << 20])
        assert type(never.value) is UploadError
        with pytest.raises(UploadError, match=f"upload {alone} was discarded: .*limit of") as later:
            uploads.add_chunks(alone, 2, one_mib[0], [1 << 20])
        assert type(later.value) is UploadError
    finally:
        UPLOAD_MEMORY.limit = before
    busy = uploads.begin(store.receive_table())
    assert uploads.take(busy, UploadBusyError("a part was refused")) is not None
    with pytest.raises(UploadBusyError, match=f"upload {busy} was discarded: a part was refused") as told:
        uploads.add_chunks(busy, 1, one_mib[0], [1 << 20])
    assert p.error_kind(told.value) == p.BUSY
    with pytest.raises(UploadError, match="no upload 12345"):
        uploads.add_chunks(12345, 0, one_mib[0], [1 << 20])


# -- parts of chunks (``add_chunks``): the receiver hashes and encodes ------------------------------------------------


def chunk_parts(chunks: list[bytes], per: int) -> list[tuple[bytes, list[int]]]:
    """Parts of ``per`` chunks each, as ``table_chunks`` carries them: the chunks back to back and their lengths."""
    return [(b"".join(chunks[i:i + per]), [len(c) for c in chunks[i:i + per]]) for i in range(0, len(chunks), per)]


@pytest.mark.parametrize("make_store", [lambda d: new_local_store(str(d)), lambda d: new_memory_store()],
                         ids=["file", "memory"])
def test_parts_of_chunks_are_placed_in_sequence_order_and_make_the_direct_table(
        tmp_path: Path, make_store: Callable[[Path], NomsBlockStore]) -> None:
    chunks = chunks_of(1000)
    parts = chunk_parts(chunks, 70)
    store = make_store(tmp_path)
    upload = store.receive_table()
    answers: dict[int, list[bytes]] = {}

    def add(seq: int) -> None:
        data, lengths = parts[seq]
        answers[seq] = upload.add_chunks(seq, data, lengths)

    with ThreadPoolExecutor(len(parts)) as pool:  # later parts start first and wait for their turn
        list(pool.map(add, reversed(range(len(parts)))))
    addrs = [compute_addr(c) for c in chunks]
    assert [a for seq in range(len(parts)) for a in answers[seq]] == addrs
    # plain bytes, which the garbage collector does not track (an Addr per chunk made it run often)
    assert all(type(a) is bytes and not gc.is_tracked(a) for seq in answers for a in answers[seq])
    spec = store.add_received(upload)
    expected = build_table(zip(addrs, chunks))
    assert (spec.name, spec.chunk_count) == (expected.name, len(chunks))
    assert store.get_many(addrs) == dict(zip(addrs, chunks))


def test_chunks_stored_already_or_repeated_add_no_record(tmp_path: Path) -> None:
    chunks = chunks_of(300)
    store = new_local_store(str(tmp_path))
    held = store.put_many(chunks[:100])
    assert store.commit(held[-1], store.root())
    upload = store.receive_table()
    sent = chunks[50:200] + chunks[150:250]  # 50 already held; 150-199 twice, the second time in another batch
    for seq, (data, lengths) in enumerate(chunk_parts(sent, 60)):
        upload.add_chunks(seq, data, lengths)
    spec = store.add_received(upload)
    novel = chunks[100:250]
    expected = build_table((compute_addr(c), c) for c in novel)
    assert (spec.name, spec.chunk_count) == (expected.name, len(novel))


def test_an_upload_of_chunks_all_stored_already_makes_no_table(tmp_path: Path) -> None:
    chunks = chunks_of(40)
    store = new_local_store(str(tmp_path))
    addrs = store.put_many(chunks)
    assert store.commit(addrs[-1], store.root())
    tables_before = sorted(os.listdir(tmp_path))
    upload = store.receive_table()
    data, lengths = chunk_parts(chunks, 40)[0]
    assert upload.add_chunks(0, data, lengths) == addrs
    spec = store.add_received(upload)
    assert spec.chunk_count == 0
    assert sorted(os.listdir(tmp_path)) == tables_before and not temp_files(tmp_path)


@pytest.mark.parametrize(("lengths_of", "reason"), [
    (lambda n: [n - 1], "adding up"),  # one byte short of the data
    (lambda n: [n, 0], "1 to"),  # an empty chunk
    (lambda n: [], "0 chunks"),
])
def test_parts_of_chunks_with_bad_lengths_are_refused(tmp_path: Path, lengths_of: Callable[[int], list[int]],
                                                     reason: str) -> None:
    store = new_local_store(str(tmp_path))
    upload = store.receive_table()
    with pytest.raises(UploadError, match=reason):
        upload.add_chunks(0, b"x" * 100, lengths_of(100))
    assert not temp_files(tmp_path)


def test_an_upload_takes_one_form_of_part_only(tmp_path: Path) -> None:
    chunks = chunks_of(20)
    store = new_local_store(str(tmp_path))
    upload = store.receive_table()
    data, lengths = chunk_parts(chunks, 10)[0]
    upload.add_chunks(0, data, lengths)
    _, parts = parts_of(chunks[10:])
    with pytest.raises(UploadError, match="holds records, the parts before it chunks"):
        send(upload, parts[0], seq=1)
    with pytest.raises(UploadError, match="discarded"):
        upload.add_chunks(2, data, lengths)
    assert not temp_files(tmp_path)


def test_a_part_of_chunks_whose_predecessor_never_comes_ends_the_upload(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(table_upload, "TURN_WAIT_S", 0.2)
    store = new_local_store(str(tmp_path))
    upload = store.receive_table()
    data, lengths = chunk_parts(chunks_of(10), 10)[0]
    with pytest.raises(UploadError, match="part 1 waited 0.2s for part 0"):
        upload.add_chunks(1, data, lengths)
    with pytest.raises(UploadError, match="discarded"):
        upload.add_chunks(0, data, lengths)
    assert not temp_files(tmp_path)


def test_a_part_of_chunks_waiting_for_its_turn_wakes_when_the_upload_is_discarded(tmp_path: Path) -> None:
    store = new_local_store(str(tmp_path))
    upload = store.receive_table()
    data, lengths = chunk_parts(chunks_of(10), 10)[0]
    with ThreadPoolExecutor(1) as pool:
        waiting = pool.submit(upload.add_chunks, 1, data, lengths)
        with pytest.raises(FutureTimeout):
            waiting.result(0.3)  # waits for part 0
        upload.discard()  # the session closed, or a newer upload evicted this one
        with pytest.raises(UploadError, match="discarded"):
            waiting.result(5)


class GatedSink(table_upload.UploadSink):
    """Records kept in memory; each write waits for ``gate`` first (or raises ``fail``)."""

    def __init__(self, fail: BaseException | None = None) -> None:
        self.gate = threading.Event()
        self.writing = threading.Event()
        self.fail = fail
        self.records: dict[int, bytes] = {}
        self.finished = False
        self.aborted = False

    def write(self, offset: int, pieces: Sequence[bytes]) -> None:
        self.writing.set()
        assert self.gate.wait(10)
        if self.fail is not None:
            raise self.fail
        self.records[offset] = b"".join(pieces)

    def finish(self, name: Addr, index: TableIndex, tail: bytes, stats: Stats) -> ChunkSource:
        self.finished = True
        return EmptyChunkSource()

    def abort(self) -> None:
        self.aborted = True


def gated_upload(sink: GatedSink) -> TableUpload:
    return TableUpload(sink, Stats(), lambda addrs: set(addrs))


def test_a_part_of_chunks_being_written_holds_back_neither_the_next_part_nor_waits_of_the_end() -> None:
    """A part's records are written outside the upload's lock: the next part is hashed and placed meanwhile,
    and the end waits for the write before it builds the table."""
    sink = GatedSink()
    upload = gated_upload(sink)
    parts = chunk_parts(chunks_of(200), 100)
    with ThreadPoolExecutor(3) as pool:
        first = pool.submit(upload.add_chunks, 0, *parts[0])
        assert sink.writing.wait(10)  # part 0 is being written, and waits
        sink.writing.clear()
        second = pool.submit(upload.add_chunks, 1, *parts[1])
        assert sink.writing.wait(10)  # part 1 was placed behind it and is being written too
        ending = pool.submit(upload.finish)
        with pytest.raises(FutureTimeout):
            ending.result(0.3)  # the end waits for the writes
        assert not sink.finished
        sink.gate.set()
        first.result(10), second.result(10)
        ending.result(10)
    assert sink.finished and sorted(sink.records) == [0, len(sink.records[0])]


def test_a_write_that_fails_outside_the_lock_discards_the_upload() -> None:
    sink = GatedSink(fail=OSError(28, "No space left on device"))
    sink.gate.set()
    upload = gated_upload(sink)
    parts = chunk_parts(chunks_of(100), 100)
    with pytest.raises(OSError, match="No space"):
        upload.add_chunks(0, *parts[0])
    assert sink.aborted
    with pytest.raises(UploadError, match="No space"):
        upload.finish()


def test_a_memory_sink_takes_no_write_after_its_abort() -> None:
    sink = table_upload.MemoryUploadSink(lambda table, stats: EmptyChunkSource())
    held = UPLOAD_MEMORY.held
    sink.write(0, [b"x" * 100])
    sink.abort()
    with pytest.raises(UploadError, match="discarded"):
        sink.write(100, [b"y" * 100])  # a part whose write was under way when the upload was discarded
    assert UPLOAD_MEMORY.held == held
