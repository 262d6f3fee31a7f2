"""What the child processes of the tests run (importable by spawn)."""

import hashlib
import itertools
import os
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
