"""Many-to-one and request/response across real processes (spawn and fork)."""

import os
import signal
import threading
import time

import numpy as np
import pytest

import helpers
import shmkit


def test_two_senders_one_receiver_in_order_per_sender(name, ctx):
    count = 2000
    with shmkit.ManyToOneReceiver(name, senders=2) as rx:
        assert rx.senders == 2
        ps = [ctx.Process(target=helpers.m2o_send_numbered, args=(name, tag, count)) for tag in (b"a", b"b")]
        for p in ps:
            p.start()
        got = {b"a": [], b"b": []}
        for msg in rx:  # until both senders have left
            tag, n = msg.split()
            got[tag].append(int(n))
        for p in ps:
            helpers.join(p)
    assert got[b"a"] == list(range(count)) and got[b"b"] == list(range(count))
    assert not os.path.exists("/dev/shm" + name)


def test_recv_from_and_recv_into_keep_a_message_too_long(name):
    with shmkit.ManyToOneReceiver(name, senders=1) as rx, shmkit.ManyToOneSender(name, timeout=10) as tx:
        tx.send(b"short")
        tx.send(np.arange(16, dtype=np.uint8))
        seat, generation, pid = tx.id
        assert rx.recv_from(timeout=5) == ((seat, generation, pid), b"short")
        with pytest.raises(ValueError):
            rx.recv_into(bytearray(4), timeout=5)
        out = bytearray(32)
        n, sender = rx.recv_into(out, timeout=5)  # the kept one
        assert (n, bytes(out[:n]), sender) == (16, bytes(range(16)), (seat, generation, pid))
        with pytest.raises(shmkit.Timeout):
            rx.recv(timeout=0.05)


def test_service_answers_each_client_its_own(name, ctx):
    ready = ctx.Queue()
    p = ctx.Process(target=helpers.serve_upper, args=(name, 5, ready))
    p.start()
    assert ready.get(timeout=30) == "ready"
    with shmkit.Client(name, timeout=30) as c:
        assert c.call(b"hello") == b"HELLO"
        a = c.send_request(b"first")
        b = c.send_request(bytearray(b"second"))
        assert c.pending == 2
        assert c.receive_response(b, timeout=30) == b"SECOND"
        assert c.receive_response(a, timeout=30) == b"FIRST"
        with pytest.raises(shmkit.ServiceError) as e:
            c.call(b"fail", timeout=30)
        assert e.value.body == b"no such record" and "no such record" in str(e.value)
        assert c.call(memoryview(b"last")) == b"LAST"
    helpers.join(p)


def test_dead_server_raises_peer_gone_and_timeouts(name, ctx):
    ready = ctx.Queue()
    p = ctx.Process(target=helpers.serve_then_hang, args=(name, ready))
    p.start()
    try:
        assert ready.get(timeout=30) == "ready"
        with shmkit.Client(name, timeout=30) as c:
            with pytest.raises(shmkit.Timeout):
                c.call(b"never answered", timeout=0.2)
            assert c.pending == 0  # given up
            os.kill(p.pid, signal.SIGKILL)
            p.join()
            start = time.monotonic()
            with pytest.raises(shmkit.PeerGone):
                c.call(b"anyone?", timeout=30)
            assert time.monotonic() - start < 1.0
    finally:
        if p.is_alive():
            p.kill()
            p.join()


def test_keyboard_interrupt_during_recv_request_and_call(name):
    with shmkit.Server(name) as server, shmkit.Client(name, timeout=10) as c:
        for wait in (lambda: server.recv_request(), lambda: c.call(b"x")):
            timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
            start = time.monotonic()
            timer.start()
            with pytest.raises(KeyboardInterrupt):
                wait()
            timer.join()
            assert time.monotonic() - start < 1.2
        # both still usable: the interrupted call was given up
        req = server.recv_request(timeout=5)
        assert req.body == b"x"
        server.respond(req, b"late")  # dropped: nobody waits for it
        assert c.pending == 0
        t = threading.Thread(target=lambda: server.respond(server.recv_request(timeout=10), b"now"))
        t.start()
        assert c.call(b"again", timeout=10) == b"now"
        t.join()


def test_service_errors_are_the_builtins(name):
    with shmkit.Server(name):
        with pytest.raises(shmkit.Busy):
            shmkit.Server(name)
    with pytest.raises(shmkit.InvalidName):
        shmkit.Client("nope")
    assert issubclass(shmkit.ServiceError, shmkit.Error)
