"""A SCOOP program for ``test_tunnel_run.py``: nested maps owned by workers, a shared constant,
and, while they run, a look at which TCP connections the run's processes hold.

Prints ``total <n>`` (the sum of the tree), ``links <a> <b>``: ``a`` connections between
the run's processes in all, ``b`` of them to a listening port that is not the origin's (a
connection somebody opened to a worker), and ``relayed <yes|no>``: whether the origin
forwarded frames between workers (tunnel mode only).
"""

import os
import threading
import time

from scoop import futures, shared


def leaf(x):
    time.sleep(0.02)
    return x + shared.getConst("offset", timeout=5)


def node(n):
    return sum(futures.map(leaf, range(n)))  # a job owned by the worker running node


def _tree(root: int) -> list[int]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as fh:
                    ppid = int(fh.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            kids.setdefault(ppid, []).append(int(entry))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(kids.get(pid, []))
    return out


def _inodes(pid: int) -> set[str]:
    found = set()
    try:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:["):
                found.add(link[8:-1])
    except OSError:
        pass
    return found


def links() -> tuple[int, int]:
    """(connections among the run's processes, those to a port other than the origin's)."""
    me = os.getpid()
    owner = {}
    for pid in _tree(me):
        for inode in _inodes(pid):
            owner[inode] = pid
    listening, established = {}, []
    with open("/proc/net/tcp") as fh:
        for line in fh.readlines()[1:]:
            f = line.split()
            local, remote, state, inode = f[1], f[2], f[3], f[9]
            if inode not in owner:
                continue
            if state == "0A":
                listening[local.split(":")[1]] = owner[inode]
            elif state == "01":
                established.append(remote.split(":")[1])
    ours = [port for port in established if port in listening]
    bad = [port for port in ours if listening[port] != me]
    return len(ours), len(bad)


if __name__ == "__main__":
    shared.setConst(offset=1000)
    seen = []
    sampler = threading.Thread(target=lambda: (time.sleep(0.8), seen.append(links())))
    sampler.start()
    total = sum(futures.map(node, [8] * 24))
    sampler.join()
    print("total", total)
    print("links", *seen[0])
    from p2pscoop.runtime import context

    routes = context.current().comm.routes
    print("relayed", "yes" if routes is not None and routes.forwarded else "no")
