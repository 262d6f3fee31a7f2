"""Event loops: every pollable endpoint's fileno() and try_* calls, driven
by asyncio's add_reader and by selectors against peers in other
processes."""

import asyncio
import io
import os
import selectors
import threading

import pytest

import helpers
import shmkit


async def _receive_all(rx):
    """Receives until Closed, waking only when rx's descriptor is readable."""
    loop = asyncio.get_running_loop()
    fd = rx.fileno()
    got, done = [], loop.create_future()

    def on_readable():
        try:
            while True:
                m = rx.try_recv()
                if m is None:  # nothing now: armed again
                    return
                got.append(m)
        except shmkit.Closed:
            loop.remove_reader(fd)
            done.set_result(None)
        except BaseException as e:  # noqa: B036 - handed to the awaiting task
            loop.remove_reader(fd)
            done.set_exception(e)

    loop.add_reader(fd, on_readable)
    await done
    return got


def test_asyncio_add_reader_drives_a_receiver(name, ctx):
    count = 5000
    msgs = [b"%d" % i for i in range(count)]
    p = ctx.Process(target=helpers.send_all, args=(name, msgs, 4096))  # a ring that fills
    p.start()
    with shmkit.Receiver(name, timeout=30) as rx:
        got = asyncio.run(asyncio.wait_for(_receive_all(rx), 120))
    helpers.join(p)
    assert got == msgs


async def _send_all(tx, msgs, on_first_full):
    """Sends every message, waiting on tx's descriptor while the ring is
    full; returns how often it was full."""
    loop = asyncio.get_running_loop()
    fd = tx.fileno()
    full = 0
    for m in msgs:
        while not tx.try_send(m):  # full: armed
            if full == 0:
                on_first_full()
            full += 1
            room = loop.create_future()
            loop.add_reader(fd, lambda: room.done() or room.set_result(None))
            try:
                await room
            finally:
                loop.remove_reader(fd)
    return full


def test_asyncio_add_reader_drives_a_sender(name, ctx):
    count = 5000
    ready, go, q = ctx.Queue(), ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=helpers.drain_after_go, args=("channel", name, ready, go, q))
    p.start()
    try:
        with shmkit.Sender(name, capacity=4096, timeout=30) as tx:
            assert ready.get(timeout=60) == "ready"
            # the receiver starts when the ring is full: the sender must wait
            sending = _send_all(tx, [b"%d" % i for i in range(count)], lambda: go.put("go"))
            full = asyncio.run(asyncio.wait_for(sending, 120))
        assert full > 0
        assert q.get(timeout=60) == list(range(count))
        helpers.join(p)
    finally:
        if p.is_alive():
            p.kill()
            p.join()


@pytest.mark.parametrize("kind", ["channel", "topic", "many"])
def test_a_full_sender_is_readable_when_the_reader_makes_room(kind, name, ctx):
    ready, go, q = ctx.Queue(), ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=helpers.drain_after_go, args=(kind, name, ready, go, q))
    p.start()  # first: a forked child must not inherit our endpoint
    if kind == "topic":
        tx = shmkit.Publisher(name, capacity=4096)  # the subscriber waits for it
    elif kind == "channel":
        tx = shmkit.Sender(name, capacity=4096, timeout=30)
    else:
        tx = shmkit.ManyToOneSender(name, senders=1, capacity=4096, timeout=30)
    try:
        assert ready.get(timeout=60) == "ready"
        count, i = 2000, 0
        while tx.try_send(b"%d" % i):  # nobody reads yet: it fills
            i += 1
        assert 0 < i < count
        with selectors.DefaultSelector() as sel:
            sel.register(tx, selectors.EVENT_READ)  # by its fileno()
            go.put("go")
            while i < count:
                assert sel.select(timeout=30), "no room came in 30 s"
                while i < count and tx.try_send(b"%d" % i):
                    i += 1
            sel.unregister(tx)
        tx.close()
        assert q.get(timeout=60) == list(range(count))
        helpers.join(p)
    finally:
        tx.close()
        if p.is_alive():
            p.kill()
            p.join()


def test_selectors_wait_on_every_kind_of_endpoint_at_once(name, ctx):
    names = [f"{name}-{part}" for part in ("topic", "m2o", "svc-a", "latest", "svc-b")]
    topic, m2o, ours, latest, theirs = names
    count = 200
    ready, go = ctx.Queue(), ctx.Queue()
    p = ctx.Process(target=helpers.poll_peer, args=(names, count, ready, go))
    p.start()  # first: a forked child must not inherit our endpoints
    rx = shmkit.ManyToOneReceiver(m2o, senders=1)  # the peer's sender and client wait for these
    server = shmkit.Server(ours)  # (the peer's client may have made it, with the default seats)
    endpoints = [rx, server]
    try:
        assert ready.get(timeout=60) == "ready"
        sub = shmkit.Subscriber(topic, timeout=30)
        reader = shmkit.LatestValue.reader(latest, timeout=30)
        client = shmkit.Client(theirs, timeout=30)
        endpoints += [sub, reader, client]
        got = {"topic": [], "m2o": [], "served": [], "versions": [], "answers": []}
        ended = set()
        call = {"id": None, "n": 0}

        def on_sub():
            try:
                while (m := sub.try_recv()) is not None:
                    got["topic"].append(m)
            except shmkit.Closed:
                ended.add("topic")

        def on_rx():
            try:
                while (m := rx.try_recv_from()) is not None:
                    got["m2o"].append(m[1])
            except shmkit.Closed:
                ended.add("m2o")

        def on_server():
            while (req := server.try_recv_request()) is not None:
                assert server.try_respond(req, req.body.upper())
                got["served"].append(req.body)

        def on_reader():
            while (v := reader.try_read_newer()) is not None:
                version, value = v
                assert value == b"v%d" % version, "the value of its version, never torn"
                got["versions"].append(version)

        def on_client():
            while True:
                if call["id"] is None:
                    if call["n"] == count:
                        return
                    call["id"] = client.try_send_request(b"q%d" % call["n"])
                    if call["id"] is None:  # full: armed
                        return
                r = client.try_receive_response(call["id"])
                if r is None:  # armed
                    return
                assert r == b"Q%d" % call["n"]
                got["answers"].append(r)
                call["id"], call["n"] = None, call["n"] + 1

        handlers = {sub: on_sub, rx: on_rx, server: on_server, reader: on_reader, client: on_client}

        def everything_done():
            return (len(got["topic"]) == count and len(got["m2o"]) == count
                    and len(got["served"]) == count and len(got["answers"]) == count
                    and got["versions"] and got["versions"][-1] == count)

        with selectors.DefaultSelector() as sel:
            for ep in handlers:
                sel.register(ep.fileno(), selectors.EVENT_READ, ep)
            go.put("go")
            while not everything_done():
                events = sel.select(timeout=30)
                assert events, f"nothing readable in 30 s; got so far {[(k, len(v)) for k, v in got.items()]}"
                for key, _ in events:
                    handlers[key.data]()
            # the peer leaves: the subscriber and the receiver see the end
            for ep in (server, reader, client):
                sel.unregister(ep.fileno())
            go.put("done")
            while ended != {"topic", "m2o"}:
                events = sel.select(timeout=30)
                assert events, "the end of the streams did not make them readable in 30 s"
                for key, _ in events:
                    if key.data in (sub, rx):
                        handlers[key.data]()
                        if ({sub: "topic", rx: "m2o"}[key.data]) in ended:
                            sel.unregister(key.fd)
        helpers.join(p)
        assert got["topic"] == [b"t%d" % i for i in range(count)]
        assert got["m2o"] == [b"m%d" % i for i in range(count)]
        assert got["served"] == [b"c%d" % i for i in range(count)]
        assert got["versions"] == sorted(set(got["versions"]))
    finally:
        for ep in endpoints:
            ep.close()
        if p.is_alive():
            p.kill()
            p.join()
        # what a killed peer left: the objects, their bells and lives
        for n in os.listdir("/dev/shm"):
            if n.startswith(name[1:] + "-"):
                os.unlink("/dev/shm/" + n)


def test_fileno_is_stable_and_closed_endpoints_have_none(name):
    senders = []
    t = threading.Thread(target=lambda: senders.append(shmkit.Sender(name, timeout=30)))
    t.start()
    with shmkit.Receiver(name, timeout=30) as rx:
        t.join()
        tx = senders[0]
        fd = rx.fileno()
        assert isinstance(fd, int) and fd >= 0 and rx.fileno() == fd
        assert rx.try_recv() is None and rx.try_recv_into(bytearray(8)) is None
        with selectors.DefaultSelector() as sel:
            sel.register(rx, selectors.EVENT_READ)
            tx.send(b"hello")
            assert sel.select(timeout=30), "a message makes it readable"
            with pytest.raises(ValueError):
                rx.try_recv_into(bytearray(2))  # too long: it stays
            assert rx.try_recv() == b"hello"
            assert rx.try_recv() is None  # armed
            tx.close()
            assert sel.select(timeout=30), "the sender's leaving makes it readable"
            with pytest.raises(shmkit.Closed):
                rx.try_recv()
            sel.unregister(rx)
    with pytest.raises(ValueError):
        rx.fileno()
    w = shmkit.LatestValue.writer(name)
    r = shmkit.LatestValue.reader(name)
    with pytest.raises(io.UnsupportedOperation):
        w.fileno()
    assert r.try_read_newer() is None
    w.write(b"one")
    with selectors.DefaultSelector() as sel:
        sel.register(r, selectors.EVENT_READ)
        assert sel.select(timeout=30), "a write makes a polling reader readable"
        assert r.try_read_newer() == (1, b"one")
        assert r.try_read_newer() is None
        sel.unregister(r)
    r.close()
    w.close()
    with pytest.raises(ValueError):
        r.fileno()
