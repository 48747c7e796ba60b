"""CPython's concurrent.futures tests on p2pscoop, in a process of their own.

Under ``python -m p2pscoop -n 5`` (the launcher): the test process is the origin, so
``wait``/``as_completed``/``result`` called by the tests run on the peer's main thread
(parking, running tasks meanwhile). Tasks are submitted with ``futures.submit`` (so this
also runs against a p2pscoop without ``Executor``).

With plain ``python``: ``cpython_futures.in_process_classes`` (a ``p2pscoop.Executor`` per
test; the tests' thread is not the peer's main thread, so waits block on conditions).

A process of its own keeps the tests' view of stderr and logging (CPython's
``test_done_callback_raises`` reads what the ``logging`` module's last-resort handler
writes) and of the process's threads as unittest gives it. Prints one
JSON line (arguments: the namespaces, default ``p2pscoop stdlib``):
``{"outcomes": [[test id, outcome, detail], ...]}``.
"""

import json
import sys

import p2pscoop
from p2pscoop import futures

import cpython_futures as cpf


class SubmitExecutor:
    """The executor of the CPython tests: ``futures.submit`` on the running runtime."""

    def __init__(self, max_workers=None, **_):
        self.submitted = []

    def submit(self, fn, *args, **kwargs):
        fut = futures.submit(fn, *args, **kwargs)
        self.submitted.append(fut)
        return fut

    def shutdown(self, wait=True, *, cancel_futures=False):
        if wait:
            futures.wait(self.submitted)  # the next test starts with idle peers
        self.submitted = []


if __name__ == "__main__":
    if cpf.CPY is None:
        print(json.dumps({"missing": cpf.MISSING}))
        sys.exit(0)
    namespaces = sys.argv[1:] or ("p2pscoop", "stdlib")  # which `futures` the tests use
    if p2pscoop.IS_RUNNING:
        classes = cpf.make_classes(SubmitExecutor, "launcher", namespaces)
    else:
        classes = cpf.in_process_classes()
    print(json.dumps({"outcomes": cpf.run_classes(classes)}), flush=True)
