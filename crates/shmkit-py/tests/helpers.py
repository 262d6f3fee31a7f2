"""What the child processes of the tests run (importable by spawn)."""

import hashlib
import itertools
import os
import threading
import time

import shmkit

_keys = itertools.count(1)


def sysv_key():
    return 0x5E000000 | ((os.getpid() & 0xFFFF) << 8) | next(_keys)


def join(p, timeout=60):
    p.join(timeout)
    if p.is_alive():
        p.kill()
        p.join()
        raise AssertionError("child did not finish")
    assert p.exitcode == 0, f"child failed with exit code {p.exitcode}"


# segments

def posix_read(name, q):
    seg = shmkit.PosixShm.open(name, read_only=True)
    view = seg.map()
    q.put((bytes(view[:5]), view.readonly, seg.size))
    view.release()
    seg.close()


def posix_write(name, data):
    seg = shmkit.PosixShm.open(name)
    view = seg.map()
    view[: len(data)] = data
    view.release()
    seg.close()


def sysv_read_write(key, id_, q):
    by_key = shmkit.SysvShm.open(key)
    by_id = shmkit.SysvShm.from_id(id_)
    ro = by_key.attach(read_only=True)
    rw = by_id.attach()
    got = bytes(ro[:5])
    rw[5:10] = b"world"
    q.put((got, ro.readonly, by_key.stat().nattch, shmkit.ftok("/", 7)))
    ro.release()
    rw.release()


def shared_memory_write(name, data, use_stdlib):
    if use_stdlib:
        from multiprocessing import resource_tracker, shared_memory

        shm = shared_memory.SharedMemory(name)
        # keep the stdlib tracker from unlinking it at exit (gh-82300)
        resource_tracker.unregister(shm._name, "shared_memory")
    else:
        shm = shmkit.SharedMemory(name)
    shm.buf[: len(data)] = data
    shm.close()


# channels

def send_all(name, msgs, capacity=1 << 20):
    with shmkit.Sender(name, capacity=capacity, timeout=30) as tx:
        for m in msgs:
            if isinstance(m, tuple):  # (type name, bytes): sent as that type
                m = {"bytearray": bytearray, "memoryview": memoryview}[m[0]](m[1])
            tx.send(m)


def recv_all(name, q):
    with shmkit.Receiver(name, timeout=30) as rx:
        q.put([bytes(m) for m in rx])


def echo(name_in, name_out):
    with shmkit.Receiver(name_in, timeout=30) as rx, shmkit.Sender(name_out, timeout=30) as tx:
        for m in rx:
            tx.send(m)


def send_array(name, n_bytes, q):
    import numpy as np

    rng = np.random.default_rng(7)
    arr = rng.integers(0, 2**63, size=n_bytes // 8, dtype=np.int64)
    q.put(hashlib.sha256(arr.tobytes()).hexdigest())
    with shmkit.Sender(name, capacity=1 << 28, timeout=30) as tx:
        tx.send(arr)


def send_then_hang(name):
    tx = shmkit.Sender(name, timeout=30)
    tx.send(b"last words")
    while True:
        time.sleep(1)


def connect_and_wait(name, q):
    rx = shmkit.Receiver(name, timeout=30)
    q.put(rx.recv(timeout=30))
    q.put(rx.recv(timeout=30))
    rx.close()


def recv_one_then_wait(name, q, done):
    with shmkit.Receiver(name, timeout=30) as rx:
        q.put(rx.recv(timeout=30))
        done.wait(60)


# latest values

def latest_write_versions(name, count, ready, done):
    """Writes values 1..count whose bytes are a function of their number."""
    w = shmkit.LatestValue.writer(name, max_size=4096)
    ready.put("ready")
    for i in range(1, count + 1):
        w.write(latest_payload(i))
    ready.put(w.version)
    done.get(timeout=60)  # stay until the reader is done
    w.close()


def latest_payload(i):
    n = 16 + (i * 37) % 4000
    return (i.to_bytes(8, "little") * (n // 8 + 1))[:n]


def latest_write_later(name, delay, data):
    time.sleep(delay)
    w = shmkit.LatestValue.writer(name, keep=True)
    w.write(data)
    w.close()


# many-to-one and services

def m2o_send_numbered(name, tag, count):
    with shmkit.ManyToOneSender(name, senders=2, timeout=30) as tx:
        for i in range(count):
            tx.send(b"%s %d" % (tag, i))


def serve_upper(name, count, ready):
    with shmkit.Server(name, clients=4) as server:
        ready.put("ready")
        for _ in range(count):
            req = server.recv_request(timeout=30)
            if req.body == b"fail":
                server.respond_error(req, b"no such record")
            else:
                server.respond(req, req.body.upper())


def serve_then_hang(name, ready):
    server = shmkit.Server(name)
    ready.put("ready")
    server.recv_request(timeout=30)  # take one, never answer
    time.sleep(60)


# topics

def subscribe_all(name, lossy, q, ready):
    with shmkit.Subscriber(name, lossy=lossy, timeout=30) as sub:
        ready.put("joined")
        got, missed = [], 0
        while True:
            try:
                got.append(sub.recv(timeout=30))
            except shmkit.Lagged as e:
                missed += e.missed
            except shmkit.Closed:
                break
        q.put((got, missed))


# services: a full request ring

def serve_when_told(name, ready, go, q):
    """Serves with 64-byte rings, taking nothing until told; then answers
    every request (upper-cased) up to b"last", and reports their bodies."""
    with shmkit.Server(name, clients=1, capacity=64) as server:
        ready.put("ready")
        assert go.get(timeout=60) == "serve"
        bodies = []
        while not bodies or bodies[-1] != b"last":
            req = server.recv_request(timeout=30)
            bodies.append(req.body)
            # the response ring is as small: wait for the client to read,
            # however long that takes under load
            deadline = time.monotonic() + 60
            while not server.try_respond(req, req.body.upper()):
                assert time.monotonic() < deadline, "the client read no response in 60 s"
                time.sleep(0.001)
        q.put(bodies)


# a kept message is next for every thread

def seq_message(i, long):
    """Message number `i`: its number in 8 bytes, 64 bytes if `long`."""
    return i.to_bytes(8, "little") + (bytes(56) if long else b"")


def is_long(i):
    return i % 4 == 1


def send_numbered(kind, name, count, ready, go):
    """Sends messages 0..count-1 (every fourth long) as `kind`'s sender."""
    if kind == "channel":
        tx = shmkit.Sender(name, capacity=4096, timeout=30)
    elif kind == "topic":
        tx = shmkit.Publisher(name, capacity=4096)
    else:
        tx = shmkit.ManyToOneSender(name, senders=1, capacity=4096, timeout=30)
    ready.put("ready")
    assert go.get(timeout=60) == "go"
    with tx:
        for i in range(count):
            tx.send(seq_message(i, is_long(i)), timeout=60)


# event loops

def drain_after_go(kind, name, ready, go, q):
    """Joins as `kind`'s receiver, waits for "go", then receives until the
    end and reports how many messages came, all numbered in order."""
    if kind == "channel":
        rx = shmkit.Receiver(name, timeout=30)
    elif kind == "topic":
        rx = shmkit.Subscriber(name, timeout=30)
    else:
        rx = shmkit.ManyToOneReceiver(name, senders=1, capacity=4096)
    with rx:
        ready.put("ready")
        assert go.get(timeout=60) == "go"
        got = [int(m) for m in rx]
    q.put(got)


def poll_peer(names, count, ready, go):
    """The other side of the selectors test: publishes, sends, writes and
    calls `count` times each, and serves `count` requests."""
    topic, m2o, theirs, latest, ours = names
    with shmkit.Server(ours, clients=1) as server, shmkit.Publisher(topic) as pub, \
            shmkit.ManyToOneSender(m2o, senders=1, timeout=30) as tx, \
            shmkit.Client(theirs, timeout=30) as client:
        w = shmkit.LatestValue.writer(latest)
        ready.put("ready")
        assert go.get(timeout=60) == "go"

        def serve():
            for _ in range(count):
                req = server.recv_request(timeout=60)
                server.respond(req, req.body.upper())

        t = threading.Thread(target=serve)
        t.start()
        for i in range(count):
            pub.send(b"t%d" % i, timeout=60)
            tx.send(b"m%d" % i, timeout=60)
            w.write(b"v%d" % (i + 1))  # version i + 1
            assert client.call(b"c%d" % i, timeout=60) == b"C%d" % i
        t.join(60)
        assert not t.is_alive()
        assert go.get(timeout=60) == "done"
        w.close()
