"""LatestValue across real processes (spawn and fork)."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import helpers
import shmkit


def test_write_read_version_and_kept(name, ctx):
    with shmkit.LatestValue.writer(name, max_size=64, keep=True) as w:
        assert (w.is_writer, w.max_size, w.version) == (True, 64, 0)
        assert w.write(b"x=1") == 1
        assert w.write(bytearray(b"x=2")) == 2
        with pytest.raises(ValueError):
            w.read()
    # kept: a reader in another process reads it after the writer left
    q = ctx.Queue()
    p = ctx.Process(target=_read_once, args=(name, q))
    p.start()
    assert q.get(timeout=30) == (2, b"x=2")
    helpers.join(p)
    with shmkit.LatestValue.reader(name) as r:
        assert r.read() == b"x=2" and r.version == 2 and not r.is_writer
        buf = np.zeros(64, dtype=np.uint8)
        assert r.read_into(buf) == (2, 3)
        assert bytes(buf[:3]) == b"x=2"
        with pytest.raises(ValueError):
            r.read_into(bytearray(2))
        with pytest.raises(ValueError):
            r.write(b"no")
    assert os.path.exists("/dev/shm" + name)
    shmkit.remove(name)


def _read_once(name, q):
    r = shmkit.LatestValue.reader(name)
    q.put(r.read_versioned())
    r.close()


def test_not_kept_goes_with_the_last_participant(name):
    w = shmkit.LatestValue.writer(name)
    r = shmkit.LatestValue.reader(name)
    assert r.read() is None and r.read_versioned() is None
    w.write(b"v")
    w.close()
    assert r.read() == b"v"
    r.close()
    assert not os.path.exists("/dev/shm" + name)
    with pytest.raises(shmkit.NotFound):
        shmkit.LatestValue.reader(name)


def test_readers_never_see_a_torn_value(name, ctx):
    ready, done = ctx.Queue(), ctx.Queue()
    count = 20000
    p = ctx.Process(target=helpers.latest_write_versions, args=(name, count, ready, done))
    p.start()
    try:
        assert ready.get(timeout=30) == "ready"
        r = shmkit.LatestValue.reader(name, timeout=30)
        seen = 0
        last = 0
        while last < count:
            got = r.read_versioned()
            if got is None:
                continue
            version, value = got
            assert value == helpers.latest_payload(version), f"torn value at version {version}"
            assert version >= last
            last = version
            seen += 1
        assert ready.get(timeout=30) == count
        done.put("done")
        r.close()
        helpers.join(p)
    finally:
        if p.is_alive():
            p.kill()
            p.join()
    assert seen > 0


def test_wait_newer_wakes_across_processes_and_times_out(name, ctx):
    w = shmkit.LatestValue.writer(name, keep=True)
    w.write(b"old")
    r = shmkit.LatestValue.reader(name)
    with pytest.raises(shmkit.Timeout) as e:
        r.wait_newer(r.version, timeout=0.1)
    assert isinstance(e.value, TimeoutError) and name in str(e.value)
    w.close()  # a later writer in another process writes the next value
    p = ctx.Process(target=helpers.latest_write_later, args=(name, 0.3, b"new"))
    p.start()
    assert r.wait_newer(1, timeout=30) == (2, b"new")
    helpers.join(p)
    r.close()
    shmkit.remove(name)


def test_second_writer_is_busy(name):
    with shmkit.LatestValue.writer(name):
        with pytest.raises(shmkit.Busy) as e:
            shmkit.LatestValue.writer(name)
        assert name in str(e.value)


def test_keyboard_interrupt_during_wait_newer(name):
    with shmkit.LatestValue.writer(name) as w, shmkit.LatestValue.reader(name) as r:
        w.write(b"a")
        timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
        start = time.monotonic()
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            r.wait_newer(r.version)
        timer.join()
        assert time.monotonic() - start < 1.2
        w.write(b"b")  # still usable
        assert r.wait_newer(1, timeout=5) == (2, b"b")


def test_too_large_and_bad_names(name):
    with shmkit.LatestValue.writer(name, max_size=8) as w:
        with pytest.raises(shmkit.Error):
            w.write(b"123456789")
    with pytest.raises(shmkit.InvalidName):
        shmkit.LatestValue.writer("no-slash")
