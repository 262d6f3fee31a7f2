"""PosixShm, SysvShm, ftok, remove, SharedMemory: across real processes."""

import ctypes
import gc
import os
import subprocess
import sys
from multiprocessing import shared_memory

import numpy as np
import pytest

import helpers
import shmkit


def test_posix_across_processes(name, ctx):
    seg = shmkit.PosixShm.create(name, 4096)
    assert (seg.name, seg.size, seg.created) == (name, 4096, True)
    assert os.stat("/dev/shm" + name).st_mode & 0o777 == 0o600
    view = seg.map()
    assert not view.readonly and len(view) == 4096
    view[:5] = b"hello"
    q = ctx.Queue()
    p = ctx.Process(target=helpers.posix_read, args=(name, q))
    p.start()
    assert q.get(timeout=60) == (b"hello", True, 4096)
    helpers.join(p)
    p = ctx.Process(target=helpers.posix_write, args=(name, b"HELLO"))
    p.start()
    helpers.join(p)
    assert bytes(view[:5]) == b"HELLO"
    view.release()
    seg.close()
    shmkit.remove(name)
    assert not os.path.exists("/dev/shm" + name)


def test_posix_create_open_or_create_mode(name):
    seg = shmkit.PosixShm.create(name, 100, mode=0o640)
    assert os.stat("/dev/shm" + name).st_mode & 0o777 == 0o640
    with pytest.raises(shmkit.AlreadyExists) as e:
        shmkit.PosixShm.create(name, 100)
    assert name in str(e.value) and isinstance(e.value, FileExistsError)
    with pytest.raises(shmkit.PermissionDenied):  # wider than the 0o600 asked for: refused
        shmkit.PosixShm.open_or_create(name, 100)
    again = shmkit.PosixShm.open_or_create(name, 100, mode=0o640)
    assert again.created is False
    again.close()
    seg.close()
    shmkit.remove(name)
    fresh = shmkit.PosixShm.open_or_create(name, 64)
    assert fresh.created is True and fresh.size == 64
    fresh.close()
    shmkit.remove(name)


def test_posix_read_only_view_refuses_writes(name):
    shmkit.PosixShm.create(name, 4096).close()
    seg = shmkit.PosixShm.open(name, read_only=True)
    view = seg.map()
    assert view.readonly
    with pytest.raises(TypeError):
        view[0] = 1
    with pytest.raises((BufferError, TypeError)):
        ctypes.c_char.from_buffer(view.obj)  # the exporter refuses a writable buffer too
    arr = np.frombuffer(view, dtype=np.uint8)
    assert not arr.flags.writeable
    del arr
    view.release()
    seg.close()
    shmkit.remove(name)


def test_close_with_live_view_raises_and_does_not_crash(name):
    seg = shmkit.PosixShm.create(name, 4096)
    view = seg.map()
    arr = np.frombuffer(view, dtype=np.uint8)
    part = view[10:20]
    with pytest.raises(BufferError):
        seg.close()
    del view
    with pytest.raises(BufferError):  # the NumPy array and the slice still use it
        seg.close()
    arr[0] = 7
    part[0] = 8
    del arr, part
    gc.collect()
    seg.close()
    assert seg.closed
    seg.close()  # twice: nothing
    with pytest.raises(ValueError):
        seg.map()
    shmkit.remove(name)


def test_remove_missing_and_invalid_names(name):
    with pytest.raises(shmkit.NotFound) as e:
        shmkit.remove(name)
    assert isinstance(e.value, FileNotFoundError) and name in str(e.value)
    for bad in ["no-slash", "/a/b", "/" + "x" * 300, "/"]:
        with pytest.raises(shmkit.InvalidName) as e:
            shmkit.PosixShm.create(bad, 10)
        assert isinstance(e.value, ValueError)


def test_sysv_across_processes(sysv_key, ctx):
    seg = shmkit.SysvShm.create(sysv_key, 4096)
    try:
        assert seg.key == sysv_key and seg.size == 4096
        view = seg.attach()
        view[:5] = b"hello"
        q = ctx.Queue()
        p = ctx.Process(target=helpers.sysv_read_write, args=(sysv_key, seg.id, q))
        p.start()
        got, readonly, nattch, key = q.get(timeout=60)
        helpers.join(p)
        # ours, the child's two, and under fork the child's inherited one
        assert (got, readonly) == (b"hello", True)
        assert nattch == (4 if ctx.get_start_method() == "fork" else 3)
        assert key == shmkit.ftok("/", 7)
        assert bytes(view[5:10]) == b"world"
        st = seg.stat()
        assert (st.size, st.nattch, st.cpid, st.mode) == (4096, 1, os.getpid(), 0o600)
        assert st.uid == os.getuid() and st.ctime is not None and st.id == seg.id
        with pytest.raises(shmkit.AlreadyExists):
            shmkit.SysvShm.create(sysv_key, 4096)
        view.release()
    finally:
        seg.remove()
    with pytest.raises(shmkit.NotFound):
        shmkit.SysvShm.open(sysv_key)


def test_sysv_private_and_from_id():
    seg = shmkit.SysvShm.private(8192, mode=0o600)
    try:
        other = shmkit.SysvShm.from_id(seg.id)
        a, b = seg.attach(), other.attach(read_only=True)
        a[100:103] = b"abc"
        assert bytes(b[100:103]) == b"abc" and b.readonly
        a.release()
        b.release()
    finally:
        seg.remove()


def test_ftok():
    assert shmkit.ftok("/", 1) == shmkit.ftok("/", 1) != shmkit.ftok("/", 2)
    with pytest.raises(shmkit.NotFound):
        shmkit.ftok("/no/such/path", 1)
    with pytest.raises(ValueError):
        shmkit.ftok("/", 0)


def _name(fixture_name):
    return fixture_name[1:]  # SharedMemory names go without '/'


def test_shared_memory_is_a_drop_in(name, ctx):
    shm = shmkit.SharedMemory(_name(name), create=True, size=1000)
    assert shm.name == _name(name) and shm.size == 1000 and len(shm.buf) == 1000
    p = ctx.Process(target=helpers.shared_memory_write, args=(shm.name, b"from child", False))
    p.start()
    helpers.join(p)
    assert bytes(shm.buf[:10]) == b"from child"
    assert os.path.exists("/dev/shm" + name)  # the child's exit removed nothing
    arr = np.frombuffer(shm.buf, dtype=np.uint8)
    with pytest.raises(BufferError):
        shm.close()
    del arr
    shm.close()
    shm.unlink()
    anon = shmkit.SharedMemory(create=True, size=10)
    assert anon.name.startswith("psm_") and repr(anon) == f"SharedMemory({anon.name!r}, size=10)"
    anon.close()
    anon.unlink()
    with pytest.raises(ValueError):
        shmkit.SharedMemory(create=True, size=0)
    with pytest.raises(FileNotFoundError):
        shmkit.SharedMemory(_name(name))


def test_shared_memory_interop_stdlib_creates(name, ctx):
    std = shared_memory.SharedMemory(_name(name), create=True, size=4096)
    try:
        p = ctx.Process(target=helpers.shared_memory_write, args=(std.name, b"shmkit was here", False))
        p.start()
        helpers.join(p)
        assert bytes(std.buf[:15]) == b"shmkit was here"
        ours = shmkit.SharedMemory(std.name)
        assert ours.size == std.size
        ours.buf[:3] = b"abc"
        assert bytes(std.buf[:3]) == b"abc"
        ours.close()
        std.close()
    finally:
        std.unlink()


def test_shared_memory_interop_shmkit_creates(name):
    ours = shmkit.SharedMemory(_name(name), create=True, size=4096)
    # a separate program (its own resource tracker) attaches with shmkit and exits
    code = (
        "import shmkit, sys; s = shmkit.SharedMemory(sys.argv[1]); "
        "s.buf[:4] = b'ping'; s.close()"
    )
    subprocess.run([sys.executable, "-c", code, ours.name], check=True, timeout=60)
    assert os.path.exists("/dev/shm" + name), "the attaching process's exit removed the segment"
    # and the standard library's class opens what shmkit made, both ways
    std = shared_memory.SharedMemory(ours.name)
    assert bytes(std.buf[:4]) == b"ping" and std.size == 4096
    # a stdlib process that attaches and exits leaves it too when it unregisters; ours never registers
    p = subprocess.run(
        [sys.executable, "-c",
         "import sys; sys.path.insert(0, sys.argv[2]); import helpers; "
         "helpers.shared_memory_write(sys.argv[1], b'pong', True)",
         ours.name, os.path.dirname(__file__)],
        check=True, timeout=60, capture_output=True, text=True,
    )
    assert "leaked" not in p.stderr
    assert bytes(ours.buf[:4]) == b"pong"
    std.close()
    std.unlink()  # also unregisters it from this process's tracker
    ours.close()
