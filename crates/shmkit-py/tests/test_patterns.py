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


def test_publish_to_two_subscribers_in_other_processes(name, ctx):
    q, ready = ctx.Queue(), ctx.Queue()
    subs = [ctx.Process(target=helpers.subscribe_all, args=(name, lossy, q, ready)) for lossy in (False, True)]
    for p in subs:
        p.start()  # subscribers first: they wait for the publisher
    count = 3000
    with shmkit.Publisher(name, capacity=1 << 16) as pub:
        assert ready.get(timeout=30) == "joined" and ready.get(timeout=30) == "joined"
        for i in range(count):
            pub.send(b"%d" % i)
        assert pub.published == count
    results = [q.get(timeout=60) for _ in subs]
    for p in subs:
        helpers.join(p)
    want = [b"%d" % i for i in range(count)]
    (blocking, zero), (lossy, missed) = results if results[0][1] == 0 and results[0][0] == want else results[::-1]
    assert blocking == want and zero == 0, "the blocking subscriber gets everything"
    # the lossy one joined before the first message: what it got plus what
    # it was told it missed is everything, even a loss before its first read
    assert len(lossy) + missed == count
    assert lossy == sorted(lossy, key=int) and lossy[-1] == want[-1]


def test_lossy_subscriber_is_told_what_it_missed(name):
    with shmkit.Publisher(name, capacity=4096) as pub, shmkit.Subscriber(name, lossy=True, timeout=5) as sub:
        assert sub.lossy
        pub.send(b"first")
        assert sub.recv(timeout=5) == b"first"
        for i in range(2000):  # far more than the ring holds, nobody reads
            pub.send(b"message %04d" % i)
        with pytest.raises(shmkit.Lagged) as e:
            sub.recv(timeout=5)
        missed = e.value.missed
        assert missed > 0 and "lost" in str(e.value)
        rest = []
        while True:
            try:
                rest.append(sub.recv(timeout=0.05))
            except shmkit.Timeout:
                break
        assert missed + len(rest) == 2000
        assert rest[-1] == b"message 1999"
        buf = bytearray(4)
        pub.send(b"too long for it")
        with pytest.raises(ValueError):
            sub.recv_into(buf, timeout=5)
        big = bytearray(64)
        assert sub.recv_into(big, timeout=5) == 15 and bytes(big[:15]) == b"too long for it"
    assert not os.path.exists("/dev/shm" + name)


def test_send_request_waits_in_slices_and_honours_its_timeout(name, ctx):
    ready, go, q = ctx.Queue(), ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=helpers.serve_when_told, args=(name, ready, go, q))
    p.start()
    try:
        assert ready.get(timeout=60) == "ready"
        with shmkit.Client(name, timeout=30) as c:
            sent = []
            while True:  # the server takes nothing yet: its 64-byte ring fills
                body = b"r%d" % len(sent)
                try:
                    sent.append((c.send_request(body, timeout=0.05), body))
                except shmkit.Timeout:
                    break
                assert len(sent) < 64, "a 64-byte request ring never filled"
            assert sent and c.pending == len(sent), "the request that timed out was not sent"
            # the call's timeout bounds its wait for room (not the client's 30 s)
            with pytest.raises(shmkit.Timeout) as e:
                c.call(b"never", timeout=0.2)
            assert isinstance(e.value, TimeoutError) and "room for the request" in str(e.value)
            # Ctrl-C ends a wait for room (the client's 30 s would raise Timeout)
            for wait in (lambda: c.send_request(b"interrupted"), lambda: c.call(b"interrupted")):
                timer = threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGINT))
                with pytest.raises(KeyboardInterrupt):
                    timer.start()
                    wait()
                timer.join()
            assert c.pending == len(sent)
            go.put("serve")
            last = c.send_request(b"last", timeout=30)  # waits for the room it makes
            for id_, body in sent:
                assert c.receive_response(id_, timeout=30) == body.upper()
            assert c.receive_response(last, timeout=30) == b"LAST"
        # what timed out or was interrupted never reached the server
        assert q.get(timeout=60) == [body for _, body in sent] + [b"last"]
        helpers.join(p)
    finally:
        if p.is_alive():
            p.kill()
            p.join()


def _connect_receiver(kind, name):
    if kind == "channel":
        return shmkit.Receiver(name, timeout=30)
    if kind == "topic":
        return shmkit.Subscriber(name, timeout=30)
    return shmkit.ManyToOneReceiver(name, senders=1, capacity=4096)


@pytest.mark.parametrize("kind", ["channel", "topic", "many"])
def test_a_kept_message_is_the_next_one_in_every_thread(kind, name, ctx):
    """Two threads receive from one endpoint: one into a buffer too small
    for every fourth message, which it leaves to the other (a receive
    keeps it), one with recv(). Each thread's messages are in order, and
    together they are every message once: no receive overtakes a kept
    message."""
    count = 2000
    ready, go = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=helpers.send_numbered, args=(kind, name, count, ready, go))
    p.start()
    if kind == "topic":
        assert ready.get(timeout=60) == "ready"  # the publisher made it, with its capacity
        rx = _connect_receiver(kind, name)
    else:
        rx = _connect_receiver(kind, name)  # the sender waits for it
        assert ready.get(timeout=60) == "ready"
    try:
        seq = lambda m: int.from_bytes(bytes(m[:8]), "little")  # noqa: E731
        got = {"small": [], "any": []}
        errors = []

        def small_buffer():
            buf = bytearray(16)
            try:
                while True:
                    try:
                        r = rx.recv_into(buf, timeout=60)
                        n = r[0] if kind == "many" else r
                        got["small"].append(seq(buf[:n]))
                    except ValueError:  # too long: kept, for the other thread
                        time.sleep(0.001)
            except shmkit.Closed:
                pass
            except BaseException as e:  # noqa: B036 - reported below
                errors.append(e)

        def any_size():
            try:
                for m in rx:
                    got["any"].append(seq(m))
            except BaseException as e:  # noqa: B036 - reported below
                errors.append(e)

        threads = [threading.Thread(target=f, daemon=True) for f in (small_buffer, any_size)]
        for t in threads:
            t.start()
        go.put("go")
        for t in threads:
            t.join(120)
            assert not t.is_alive(), "a receiving thread did not finish"
        assert not errors, errors
        for who, seqs in got.items():
            assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs), f"{who}: out of order"
        assert sorted(got["small"] + got["any"]) == list(range(count))
        assert not any(helpers.is_long(i) for i in got["small"])
        helpers.join(p)
    finally:
        rx.close()
        if p.is_alive():
            p.kill()
            p.join()


def test_a_closed_receiver_gives_no_kept_message(name, request):
    request.addfinalizer(lambda: os.path.exists("/dev/shm" + name + "-m2o") and os.unlink("/dev/shm" + name + "-m2o"))
    with shmkit.Publisher(name) as pub:
        sub = shmkit.Subscriber(name, timeout=10)
        rx = shmkit.ManyToOneReceiver(name + "-m2o", senders=1)
        tx = shmkit.ManyToOneSender(name + "-m2o", timeout=10)
        pub.send(b"too long for four bytes")
        tx.send(b"too long for four bytes")
        with pytest.raises(ValueError):
            sub.recv_into(bytearray(4), timeout=10)
        with pytest.raises(ValueError):
            rx.try_recv_into(bytearray(4))
        sub.close()
        rx.close()
        for closed in (sub.recv, rx.recv, sub.try_recv, rx.try_recv):
            with pytest.raises(ValueError, match="closed"):
                closed()
        tx.close()
