#!/usr/bin/env python3
"""shmkit's Python package beside multiprocessing.Pipe, multiprocessing.Queue
and iceoryx2's Python bindings: the same two measurements, two processes,
one run.

- ``rtt``: a 64-byte message to the other process and back, timed by the
  first process for each round trip; the median (p50) of the round trips.
- ``arrays``: 1 MiB NumPy arrays streamed to the other process, which
  receives each into one preallocated array; arrays per second as the
  receiver counts them, after the first fifth (which faults in the
  transport's memory).

Each transport is used as its users would for this job:

- ``shmkit``: a ``shmkit.Sender``/``Receiver`` channel each way;
  ``send(array)`` takes the array's buffer, ``recv_into(array)`` copies the
  message into it (the GIL released while it waits and copies). Waits spin
  briefly, then sleep on a futex (the package's default).
- ``pipe``: ``multiprocessing.Pipe()``; ``send_bytes(array)``,
  ``recv_bytes_into(array)``. Sleeps in ``read(2)``.
- ``queue``: ``multiprocessing.Queue``; ``put(array)`` (pickled by a feeder
  thread), ``get()`` then a copy into the array.
- ``iceoryx2`` (PyPI ``iceoryx2``): publish-subscribe of ``Slice[c_uint8]``
  each way, as its ``publish_subscribe_dynamic_data`` example; the sender
  loans a slice, copies the message in with NumPy and sends it; the
  receiver polls ``receive()`` in a loop (its Python API has no blocking
  receive on a subscriber; a WaitSet with an event service would add a
  second service per direction) and copies the payload into the array.
  Round trips: history 0, a buffer of 1, safe overflow; arrays: a buffer of
  4, no overflow, the publisher retries until delivered.

Run: ``python benchmarks/python/bench.py [--runs 3] [--transports shmkit,pipe]``
with shmkit installed (``pip install ./crates/shmkit-py``), NumPy, and
optionally ``iceoryx2`` (skipped with a note when it is not installed).
Results are medians over ``--runs`` runs, the transports interleaved in
each run. See BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import multiprocessing as mp
import os
import statistics
import struct
import sys
import time

import numpy as np

TRANSPORTS = ["shmkit", "pipe", "queue", "iceoryx2"]
SMALL = 64
LARGE = 1 << 20


class Link:
    """One side's two directions: ``send(buffer)`` and ``recv_into(array)``."""

    def send(self, buf) -> None:
        raise NotImplementedError

    def recv_into(self, arr: np.ndarray) -> int:
        raise NotImplementedError

    def close(self) -> None:
        pass


class ShmkitLink(Link):
    def __init__(self, tag: str, leader: bool, size: int):
        import shmkit

        out, back = (f"/{tag}-a", f"/{tag}-b") if leader else (f"/{tag}-b", f"/{tag}-a")
        capacity = 1 << max(16, (4 * size + 64).bit_length())
        # The sender of each direction chooses the capacity; the receiver
        # takes what the sender chose. A connect waits for the other side,
        # so the two processes connect in opposite orders.
        if leader:
            self.tx = shmkit.Sender(out, capacity=capacity, timeout=30)
            self.rx = shmkit.Receiver(back, timeout=30)
        else:
            self.rx = shmkit.Receiver(back, timeout=30)
            self.tx = shmkit.Sender(out, capacity=capacity, timeout=30)

    def send(self, buf) -> None:
        self.tx.send(buf)

    def recv_into(self, arr: np.ndarray) -> int:
        return self.rx.recv_into(arr)

    def close(self) -> None:
        self.tx.close()
        self.rx.close()


class PipeLink(Link):
    def __init__(self, conn):
        self.conn = conn

    def send(self, buf) -> None:
        self.conn.send_bytes(buf)

    def recv_into(self, arr: np.ndarray) -> int:
        return self.conn.recv_bytes_into(arr)


class QueueLink(Link):
    def __init__(self, out, back):
        self.out, self.back = out, back

    def send(self, buf) -> None:
        self.out.put(buf)

    def recv_into(self, arr: np.ndarray) -> int:
        got = self.back.get()
        n = len(got)
        arr[:n] = np.frombuffer(got, dtype=np.uint8) if isinstance(got, (bytes, bytearray)) else got
        return n


class Iceoryx2Link(Link):
    def __init__(self, tag: str, leader: bool, size: int, stream: bool):
        import iceoryx2 as iox2

        iox2.set_log_level_from_env_or(iox2.LogLevel.Fatal)
        self.iox2 = iox2
        self.node = iox2.NodeBuilder.new().create(iox2.ServiceType.Ipc)
        out, back = (f"{tag}-a", f"{tag}-b") if leader else (f"{tag}-b", f"{tag}-a")

        def service(name):
            b = self.node.service_builder(iox2.ServiceName.new(name)).publish_subscribe(iox2.Slice[ctypes.c_uint8])
            b = b.history_size(0)
            if stream:
                b = b.subscriber_max_buffer_size(4).enable_safe_overflow(False)
            else:
                b = b.subscriber_max_buffer_size(1).enable_safe_overflow(True)
            return b.open_or_create()

        self.out_service, self.back_service = service(out), service(back)
        p = self.out_service.publisher_builder().initial_max_slice_len(size)
        if stream:
            p = p.backpressure_strategy(iox2.BackpressureStrategy.RetryUntilDelivered)
        self.pub = p.create()
        self.sub = self.back_service.subscriber_builder().create()

    def wait_connected(self, deadline: float) -> None:
        # A publisher delivers only to subscribers that exist when it sends.
        while self.out_service.dynamic_config.number_of_subscribers < 1:
            if time.monotonic() > deadline:
                raise TimeoutError("iceoryx2: no subscriber came")
            time.sleep(0.001)

    def send(self, buf) -> None:
        src = np.frombuffer(buf, dtype=np.uint8) if not isinstance(buf, np.ndarray) else buf.view(np.uint8).reshape(-1)
        sample = self.pub.loan_slice_uninit(src.size)
        np.frombuffer(sample.payload().as_memory_view(), dtype=np.uint8)[:] = src
        sample.assume_init().send()

    def recv_into(self, arr: np.ndarray) -> int:
        receive = self.sub.receive
        while True:
            sample = receive()
            if sample is not None:
                break
        payload = np.frombuffer(sample.payload().as_memory_view(), dtype=np.uint8)
        n = payload.size
        arr[:n] = payload
        sample.delete()
        return n

    def close(self) -> None:
        for port in ("sub", "pub"):
            getattr(self, port).delete()


def prepare(transport: str):
    """What both processes need before they start (fork inherits it)."""
    if transport == "pipe":
        return mp.Pipe(duplex=True)
    if transport == "queue":
        return (mp.Queue(maxsize=4), mp.Queue(maxsize=4))
    return f"shmkit-pybench-{os.getpid()}-{time.monotonic_ns()}"


def open_link(transport: str, state, leader: bool, size: int, stream: bool) -> Link:
    if transport == "shmkit":
        return ShmkitLink(state, leader, size)
    if transport == "pipe":
        return PipeLink(state[0] if leader else state[1])
    if transport == "queue":
        a, b = state
        return QueueLink(a, b) if leader else QueueLink(b, a)
    link = Iceoryx2Link(state, leader, size, stream)
    link.wait_connected(time.monotonic() + 30)
    return link


def peer(transport: str, state, case: str, count: int) -> None:
    """The second process: echoes round trips, or takes the arrays."""
    size = SMALL if case == "rtt" else LARGE
    link = open_link(transport, state, False, size, case == "arrays")
    buf = np.zeros(size, dtype=np.uint8)
    ack = np.zeros(SMALL, dtype=np.uint8)
    if case == "rtt":
        for _ in range(count):
            n = link.recv_into(buf)
            link.send(buf[:n])
    else:
        # Timed by the receiver, after a fifth of the arrays: the first laps
        # of a ring or pipe fault its pages in, which is not the rate.
        warm = count // 5
        for _ in range(warm):
            link.recv_into(buf)
        t0 = time.perf_counter()
        for _ in range(count - warm):
            link.recv_into(buf)
        rate = (count - warm) / (time.perf_counter() - t0)
        ack[:8] = np.frombuffer(struct.pack("<d", rate), dtype=np.uint8)
        link.send(ack)
    # Let the leader read the last message before this side goes.
    link.recv_into(ack)
    link.close()


def measure(transport: str, case: str, count: int) -> float:
    """A round trip's p50 in microseconds, or arrays per second."""
    state = prepare(transport)
    size = SMALL if case == "rtt" else LARGE
    child = mp.get_context("fork").Process(target=peer, args=(transport, state, case, count), daemon=True)
    child.start()
    try:
        link = open_link(transport, state, True, size, case == "arrays")
        msg = np.arange(size, dtype=np.uint64).astype(np.uint8)
        buf = np.zeros(size, dtype=np.uint8)
        if case == "rtt":
            times = []
            clock = time.perf_counter_ns
            for i in range(count):
                t0 = clock()
                link.send(msg)
                link.recv_into(buf)
                times.append(clock() - t0)
            result = statistics.median(times[count // 10 :]) / 1000
        else:
            for _ in range(count):
                link.send(msg)
            link.recv_into(buf)  # the receiver's rate, when it has them all
            result = struct.unpack("<d", buf[:8].tobytes())[0]
        link.send(msg[:SMALL])
        child.join(30)
        link.close()
        return result
    finally:
        if child.is_alive():
            child.kill()
            child.join()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--transports", default=",".join(TRANSPORTS))
    ap.add_argument("--rtt-count", type=int, default=20000)
    ap.add_argument("--array-count", type=int, default=400)
    ap.add_argument("--json", action="store_true", help="print one JSON object")
    args = ap.parse_args()
    transports = [t for t in args.transports.split(",") if t]
    if "iceoryx2" in transports:
        try:
            import iceoryx2  # noqa: F401
        except ImportError:
            print("note: iceoryx2 is not installed (pip install iceoryx2): skipped", file=sys.stderr)
            transports.remove("iceoryx2")
    results: dict[str, dict[str, list[float]]] = {t: {"rtt": [], "arrays": []} for t in transports}
    before = set(os.listdir("/dev/shm"))
    try:
        for run in range(args.runs):
            for case, count in (("rtt", args.rtt_count), ("arrays", args.array_count)):
                for t in transports:
                    results[t][case].append(measure(t, case, count))
            print(f"run {run + 1}/{args.runs} done", file=sys.stderr)
    finally:
        # iceoryx2 keeps its node and service registry in /dev/shm (iox2_*)
        # and leaves its global part behind; what this run made goes.
        for entry in set(os.listdir("/dev/shm")) - before:
            if entry.startswith("iox2_"):
                try:
                    os.unlink(os.path.join("/dev/shm", entry))
                except OSError:
                    pass
    med = {t: {c: statistics.median(v) for c, v in r.items()} for t, r in results.items()}
    if args.json:
        print(json.dumps({"runs": args.runs, "median": med, "all": results}, indent=2))
        return 0
    print(f"medians of {args.runs} runs; ratios against each transport in the row's order")
    print(f"{'transport':<10} {'64 B rtt p50':>14} {'1 MiB arrays/s':>16}")
    for t in transports:
        print(f"{t:<10} {med[t]['rtt']:>11.1f} µs {med[t]['arrays']:>16.0f}")
    if "shmkit" in med:
        for other in transports:
            if other == "shmkit":
                continue
            print(
                f"shmkit / {other}: rtt {med['shmkit']['rtt'] / med[other]['rtt']:.2f}x, "
                f"arrays/s {med['shmkit']['arrays'] / med[other]['arrays']:.1f}x"
            )
    return 0


if __name__ == "__main__":
    sys.exit(main())
