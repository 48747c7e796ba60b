"""Run under ``python -m p2pscoop -n 2 executor_prog.py GATE_DIR``: the standard interfaces
on the origin's main thread (the program itself), where results used to be taken in only
while the program was inside a p2pscoop call. Prints one JSON object: check -> outcome.

GATE_DIR: a directory for gate files (``api_helpers.Gate``), so a long task is one that
cannot end before the program opens its gate, not a guess about durations.
"""

import asyncio
import concurrent.futures as cf
import json
import sys
import threading
from pathlib import Path

import p2pscoop
from p2pscoop import futures

from api_helpers import Gate, gate_task, identity, square

checks = {}


def check(name):
    def run(fn):
        try:
            checks[name] = fn()
        except BaseException as exc:  # noqa: BLE001 - reported, the test asserts
            checks[name] = f"raised {type(exc).__name__}: {exc}"
        return fn
    return run


def main():
    @check("asyncio_wrap_future")
    def _():
        async def main():
            return await asyncio.wrap_future(futures.submit(square, 7))
        return asyncio.run(main())


    @check("await_future")
    def _():
        async def main():
            return list(await asyncio.gather(*(futures.submit(square, i) for i in range(4))))
        return asyncio.run(main())


    @check("executor_attached")
    def _():
        with p2pscoop.Executor() as ex:
            async def main():
                return await asyncio.get_running_loop().run_in_executor(ex, square, 5)
            return [asyncio.run(main()), list(ex.map(square, range(5), chunksize=2)),
                    ex.submit(identity, "x").result()]


    @check("stdlib_wait_and_as_completed")
    def _():
        fs = [futures.submit(square, i) for i in range(6)]
        done, not_done = cf.wait(fs)
        return [len(done), len(not_done), sorted(f.result() for f in cf.as_completed(fs))]


    @check("bare_future_set_by_another_thread")
    def _():
        fut = futures.Future()
        threading.Thread(target=fut.set_result, args=("from a thread",)).start()
        return fut.result()  # no timeout: this must not hang


    @check("p2pscoop_wait_sees_a_thread_pool_future")
    def _():
        with cf.ThreadPoolExecutor(1) as pool:
            foreign = pool.submit(identity, "pool")
            ours = futures.submit(identity, "ours")
            done, not_done = futures.wait([foreign, ours])
            return [len(done), len(not_done), foreign.result(), ours.result()]


    @check("first_completed_not_behind_a_long_task")
    def _():
        gate = Gate(Path(sys.argv[1]))
        quick = futures.submit(identity, "quick")  # the oldest: the worker steals it first
        long = futures.submit(gate_task, gate.path)
        try:
            done, not_done = futures.wait([quick, long], return_when=futures.FIRST_COMPLETED)
            return [quick in done, long in not_done]
        finally:
            gate.open()
            long.result()

    print(json.dumps(checks), flush=True)


if __name__ == "__main__":
    main()
