"""The tee reads its source once for every target; a target that falls behind or quits is dropped
(its reader ends with a transient error after what it already has), and the others finish."""

import threading
import time

import pytest

from lanmirror.errors import TransientError
from lanmirror.remote.blobtee import BlobTee

CHUNKS = [bytes([i]) * 1000 for i in range(20)]


class Counting:
    def __init__(self, chunks, fail_at=None):
        self.chunks, self.fail_at, self.reads = chunks, fail_at, 0

    def __iter__(self):
        for i, c in enumerate(self.chunks):
            if i == self.fail_at:
                raise TransientError("source reset")
            self.reads += 1
            yield c


def collect(reader, out, delay=0.0):
    try:
        for chunk in reader:
            out.append(chunk)
            time.sleep(delay)
    except TransientError as exc:
        out.append(exc)


def run(tee, delays):
    outs = [[] for _ in delays]
    threads = [threading.Thread(target=collect, args=(tee.reader(i), outs[i], d)) for i, d in enumerate(delays)]
    for t in threads:
        t.start()
    tee.pump()
    for t in threads:
        t.join(10)
    return outs


def test_one_read_serves_every_target():
    source = Counting(CHUNKS)
    outs = run(BlobTee(source, 3, depth=2), [0, 0, 0])
    assert source.reads == len(CHUNKS) and all(o == CHUNKS for o in outs)


def test_a_target_that_falls_behind_is_dropped_and_the_others_finish():
    source = Counting(CHUNKS)
    outs = run(BlobTee(source, 2, depth=2, stall=0.2), [0, 1.0])
    assert outs[0] == CHUNKS
    assert isinstance(outs[1][-1], TransientError) and "alone" in str(outs[1][-1])
    assert outs[1][:-1] == CHUNKS[:len(outs[1]) - 1]  # what it got before the drop is a clean prefix


def test_a_source_failure_reaches_every_target():
    outs = run(BlobTee(Counting(CHUNKS, fail_at=5), 2, depth=2), [0, 0])
    for out in outs:
        assert out[:5] == CHUNKS[:5] and isinstance(out[5], TransientError) and "source reset" in str(out[5])


def test_when_every_target_quits_the_source_is_not_read_to_the_end():
    source = Counting(CHUNKS)
    tee = BlobTee(source, 1, depth=1)
    reader = tee.reader(0)
    pump = threading.Thread(target=tee.pump)
    pump.start()
    next(reader)
    reader.close()  # its writer gave up
    pump.join(10)
    assert not pump.is_alive() and source.reads < len(CHUNKS)


def test_reader_is_an_iterator_of_bytes():
    tee = BlobTee([b"x"], 1)
    reader = tee.reader(0)
    threading.Thread(target=tee.pump).start()
    assert list(reader) == [b"x"]
    with pytest.raises(StopIteration):
        next(reader)
