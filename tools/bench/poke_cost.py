"""What a poke of the comm thread costs the thread that pokes, while it runs Python.

Run: ``python tools/bench/poke_cost.py [--pokes N] [--burst K]`` (no peers: one process).

A main thread busy-waits 0.3 ms between pokes; a second thread, standing for the comm
thread, sleeps in ``zmq.Poller.poll`` on an inproc PAIR, reads each poke and then runs a
short burst of Python (``--burst`` loop turns). The switch interval is the one a peer sets
(``NodeConfig.switch_interval``). Prints the main thread's time per ``send`` of one
empty frame, p50 / mean / p90 in µs, and the 1-minute load.

What it shows (2026-11-30, helper ``frames1``): the send costs about 18 µs at p50, not the
1 µs of the call. pyzmq gives the GIL up around ``zmq_msg_send``; the woken thread takes it
inside that window and the poker gets it back only after the burst.
"""

import argparse
import os
import statistics
import sys
import threading
import time

import zmq


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--pokes", type=int, default=2000)
    ap.add_argument("--burst", type=int, default=300, help="loop turns after each poke")
    args = ap.parse_args()
    sys.setswitchinterval(0.00005)
    ctx = zmq.Context()
    inbox = ctx.socket(zmq.PAIR)
    inbox.bind("inproc://poke-cost")
    outbox = ctx.socket(zmq.PAIR)
    outbox.connect("inproc://poke-cost")
    stop = threading.Event()

    def comm() -> None:
        poller = zmq.Poller()
        poller.register(inbox, zmq.POLLIN)
        x = 0
        while not stop.is_set():
            if poller.poll(100):
                inbox.recv()
                for i in range(args.burst):
                    x += i

    thread = threading.Thread(target=comm, daemon=True)
    thread.start()
    costs = []
    for _ in range(args.pokes):
        end = time.perf_counter() + 0.0003
        while time.perf_counter() < end:
            pass
        t = time.perf_counter()
        outbox.send(b"", zmq.NOBLOCK)
        costs.append(time.perf_counter() - t)
    stop.set()
    thread.join()
    inbox.close(linger=0)
    outbox.close(linger=0)
    ctx.term()
    costs.sort()
    print(f"poke µs p50 {costs[len(costs) // 2] * 1e6:.1f} mean "
          f"{statistics.mean(costs) * 1e6:.1f} p90 {costs[int(0.9 * len(costs))] * 1e6:.1f}"
          f" (load {os.getloadavg()[0]:.2f})")


if __name__ == "__main__":
    main()
