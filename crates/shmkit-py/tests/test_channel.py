"""Sender and Receiver across real processes (spawn and fork)."""

import gc
import hashlib
import os
import signal
import threading
import time

import numpy as np
import pytest

import helpers
import shmkit


def test_send_recv_iterate_either_side_first(name, ctx):
    msgs = [b"", b"a", b"x" * 1000, ("bytearray", b"bytearray"), ("memoryview", b"memoryview")]
    p = ctx.Process(target=helpers.send_all, args=(name, msgs))
    p.start()  # the sender may come first
    with shmkit.Receiver(name, timeout=30) as rx:
        assert rx.name == name and rx.max_message == (1 << 20) // 2 - 8
        assert rx.recv(timeout=30) == b""
        got = list(rx)  # until the sender closes
    helpers.join(p)
    assert got == [b"a", b"x" * 1000, b"bytearray", b"memoryview"]
    assert not os.path.exists("/dev/shm" + name)


def test_receiver_in_child(name, ctx):
    q = ctx.Queue()
    p = ctx.Process(target=helpers.recv_all, args=(name, q))
    p.start()
    with shmkit.Sender(name, capacity=4096, timeout=30) as tx:
        assert tx.capacity == 4096
        for i in range(1000):  # many times the ring
            tx.send(b"message %d" % i)
    assert q.get(timeout=60) == [b"message %d" % i for i in range(1000)]
    helpers.join(p)


def test_recv_into_and_numpy(name, ctx):
    arrays = [np.arange(1000, dtype=np.float64), np.ones((10, 10), dtype=np.int32)]
    p = ctx.Process(target=helpers.send_all, args=(name, arrays + [b"too long" * 100]))
    p.start()
    with shmkit.Receiver(name, timeout=30) as rx:
        out = np.empty(1000, dtype=np.float64)
        assert rx.recv_into(out, timeout=30) == 8000
        assert (out == arrays[0]).all()
        buf = bytearray(1000)
        assert rx.recv_into(buf) == 400
        assert np.frombuffer(buf[:400], dtype=np.int32).sum() == 100
        small = bytearray(10)
        with pytest.raises(ValueError):
            rx.recv_into(small)  # the message stays in the channel
        with pytest.raises((BufferError, TypeError)):
            rx.recv_into(b"read-only bytes")
        assert rx.recv() == b"too long" * 100
    helpers.join(p)


def test_recv_view_zero_copy_and_after_block(name, ctx):
    arr = np.arange(4096, dtype=np.uint32)
    p = ctx.Process(target=helpers.send_all, args=(name, [arr, b"second", b"third", b"fourth"]))
    p.start()
    with shmkit.Receiver(name, timeout=30) as rx:
        with rx.recv_view(timeout=30) as view:
            assert view.readonly and view.nbytes == arr.nbytes
            got = np.frombuffer(view, dtype=np.uint32)
            assert not got.flags.writeable
            assert (got == arr).all()
            del got
            exporter = view.obj
        with pytest.raises(ValueError):  # the view is released after its block
            view[0]
        with pytest.raises(BufferError):  # and its exporter lends nothing any more
            memoryview(exporter)
        # a NumPy array kept beyond the block keeps the message held: no reuse
        with rx.recv_view() as view:
            kept = np.frombuffer(view, dtype=np.uint8)
        assert bytes(kept) == b"second"
        with pytest.raises(BufferError):
            rx.recv()
        assert bytes(kept) == b"second"
        with pytest.raises(BufferError):
            rx.close()  # close() with a live view raises, never crashes
        del kept
        gc.collect()
        assert rx.recv() == b"third"
        with rx.recv_view() as view:
            assert bytes(view) == b"fourth"
        assert list(rx) == []
    helpers.join(p)


def test_numpy_100_mib_round_trip(name, ctx):
    n = 100 << 20
    q = ctx.Queue()
    p = ctx.Process(target=helpers.send_array, args=(name, n, q))
    p.start()
    with shmkit.Receiver(name, timeout=60) as rx:
        with rx.recv_view(timeout=120) as view:
            arr = np.frombuffer(view, dtype=np.int64)
            assert arr.nbytes == n
            digest = hashlib.sha256(arr).hexdigest()
            del arr
    assert digest == q.get(timeout=60)
    helpers.join(p, timeout=120)


def test_echo_round_trip(name, ctx):
    back = name + "-back"
    p = ctx.Process(target=helpers.echo, args=(name, back))
    p.start()
    try:
        with shmkit.Sender(name, timeout=30) as tx, shmkit.Receiver(back, timeout=30) as rx:
            for i in range(100):
                tx.send(b"%d" % i)
                assert rx.recv(timeout=30) == b"%d" % i
        helpers.join(p)
    finally:
        if os.path.exists("/dev/shm" + back):
            os.unlink("/dev/shm" + back)


def test_timeouts_are_timeout_errors(name, ctx):
    with pytest.raises(shmkit.Timeout) as e:
        shmkit.Receiver(name, timeout=0.1)  # nobody comes
    assert isinstance(e.value, TimeoutError) and name in str(e.value)
    assert not os.path.exists("/dev/shm" + name)
    q, done = ctx.Queue(), ctx.Event()
    p = ctx.Process(target=helpers.recv_one_then_wait, args=(name, q, done))
    p.start()
    with shmkit.Sender(name, capacity=64, timeout=30) as tx:
        tx.send(b"1")
        assert q.get(timeout=30) == b"1"
        with pytest.raises(shmkit.Timeout):
            for _ in range(10):  # the ring holds fewer: the receiver takes nothing more
                tx.send(b"x" * 24, timeout=0.1)
        done.set()
    helpers.join(p)


def test_second_receiver_is_busy(name, ctx):
    q = ctx.Queue()
    p = ctx.Process(target=helpers.connect_and_wait, args=(name, q))
    p.start()
    with shmkit.Sender(name, timeout=30) as tx:
        with pytest.raises(shmkit.Busy) as e:
            shmkit.Receiver(name, timeout=5)
        assert name in str(e.value)
        tx.send(b"a")
        tx.send(b"b")
        assert (q.get(timeout=30), q.get(timeout=30)) == (b"a", b"b")
    helpers.join(p)


def test_keyboard_interrupt_during_recv(name, ctx):
    p = ctx.Process(target=helpers.send_then_hang, args=(name,))
    p.start()
    try:
        with shmkit.Receiver(name, timeout=30) as rx:
            assert rx.recv(timeout=30) == b"last words"
            timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
            start = time.monotonic()
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                rx.recv()  # blocks: the sender sends nothing more
            elapsed = time.monotonic() - start
            timer.join()
            assert elapsed < 1.2, f"KeyboardInterrupt took {elapsed:.2f} s"
            # still usable
            with pytest.raises(shmkit.Timeout):
                rx.recv(timeout=0.1)
            p.kill()
            p.join()
            with pytest.raises(shmkit.PeerGone):
                rx.recv(timeout=10)
    finally:
        if p.is_alive():
            p.kill()
            p.join()


def test_keyboard_interrupt_during_connect(name):
    timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    with pytest.raises(KeyboardInterrupt):
        shmkit.Receiver(name)  # nobody comes
    timer.join()
    assert not os.path.exists("/dev/shm" + name)


def test_peer_killed_raises_peer_gone(name, ctx):
    p = ctx.Process(target=helpers.send_then_hang, args=(name,))
    p.start()
    try:
        with shmkit.Receiver(name, timeout=30) as rx:
            assert rx.recv(timeout=30) == b"last words"
            os.kill(p.pid, signal.SIGKILL)
            p.join()
            start = time.monotonic()
            with pytest.raises(shmkit.PeerGone) as e:
                rx.recv(timeout=10)
            elapsed = time.monotonic() - start
            assert elapsed < 1.0, f"PeerGone took {elapsed:.2f} s"
            assert name in str(e.value) and str(p.pid) in str(e.value)
    finally:
        if p.is_alive():
            p.kill()
            p.join()


def _drop_inherited(tx):
    tx.close()
    del tx
    gc.collect()


def test_fork_child_dropping_inherited_endpoint_closes_nothing(name):
    import multiprocessing

    spawn = multiprocessing.get_context("spawn")
    q = spawn.Queue()
    receiver = spawn.Process(target=helpers.recv_all, args=(name, q))
    receiver.start()
    with shmkit.Sender(name, timeout=30) as tx:
        tx.send(b"before")
        child = multiprocessing.get_context("fork").Process(target=_drop_inherited, args=(tx,))
        child.start()
        helpers.join(child)
        tx.send(b"after")  # the parent's side is still open
    assert q.get(timeout=60) == [b"before", b"after"]
    helpers.join(receiver)


def test_closed_endpoint(name, ctx):
    p = ctx.Process(target=helpers.send_all, args=(name, [b"x"]))
    p.start()
    rx = shmkit.Receiver(name, timeout=30)
    assert rx.recv() == b"x"
    with pytest.raises(shmkit.Closed) as e:
        rx.recv(timeout=30)
    assert isinstance(e.value, EOFError)
    rx.close()
    rx.close()
    with pytest.raises(ValueError):
        rx.recv()
    helpers.join(p)


def test_a_zero_timeout_still_takes_what_is_there(name):
    # a wait whose deadline has passed looks once before it gives up
    senders = []
    t = threading.Thread(target=lambda: senders.append(shmkit.Sender(name, timeout=10)))
    t.start()
    with shmkit.Receiver(name, timeout=10) as rx:
        t.join()
        with senders[0] as tx:
            tx.send(b"hello")
            assert rx.recv(timeout=0) == b"hello"
            with pytest.raises(shmkit.Timeout):
                rx.recv(timeout=0)
