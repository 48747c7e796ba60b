"""Tunnel routing (``core/tunnel.py``): its rules in tables, and the ``--broker`` core running
over it in the deterministic simulator.

``TunnelSim`` routes every message as a tunnelled run does: a worker sends to the hub (the
origin, rank 0) directly and to any other worker in an envelope through the hub, which
forwards it (``TunnelRoutes.forward``) and the receiver handles it as from the first
sender. No message ever travels between two workers directly (asserted on every send), and
every unit still resolves exactly once, nested work owned by workers included, whose
results reach their owners through the hub.
"""

from collections import Counter

import pytest

from p2pscoop.core import messages as M
from p2pscoop.core import tunnel as T
from p2pscoop.core.events import Received

from sim import peer_id, square, tree
from test_broker import BROKER, RecordingSim

HUB, A, B, C = (bytes([i]) * 16 for i in (1, 2, 3, 4))


def _hub(*peers):
    routes = T.TunnelRoutes(is_hub=True)
    for p in peers:
        assert routes.connect(p) == T.REPLY  # the hub never dials
    return routes


def _worker():
    routes = T.TunnelRoutes(is_hub=False)
    assert routes.connect(HUB) == T.DIAL  # its bootstrap: the hub, the only peer it dials
    return routes


def test_a_worker_dials_the_hub_only():
    w = _worker()
    assert w.hub == HUB
    assert w.connect(B) == T.VIA_HUB
    assert w.connect(HUB) == T.DIAL
    assert [w.route(p) for p in (HUB, B, C)] == [T.DIAL, T.VIA_HUB, T.VIA_HUB]
    assert w.virtual == {B}
    w.drop(B)
    assert w.virtual == set()


def test_the_hub_replies_to_everyone_on_their_connections():
    h = _hub(A, B)
    assert h.route(A) == h.route(C) == T.REPLY  # C: a refused peer is answered too
    assert h.replies == {A, B}


@pytest.mark.parametrize("sender,target,admitted,ok", [
    (A, B, {A, B}, True),
    (A, A, {A, B}, False),  # to itself
    (A, B, {B}, False),  # sender not admitted
    (A, B, {A}, False),  # target not admitted
    (A, C, {A, B, C}, False),  # target never connected to the hub
])
def test_the_hub_forwards_between_admitted_peers_naming_the_real_sender(sender, target,
                                                                         admitted, ok):
    h = _hub(A, B)
    inner = M.encode(M.Hint())
    got = h.forward(sender, T.wrap(target, inner), admitted)
    if not ok:
        assert got is None and h.rejected == 1 and h.forwarded == 0
        return
    to, frames = got
    assert to == target
    assert T.unwrap(frames) == (sender, inner)  # the connection's identity, not a field
    assert h.forwarded == 1


def test_malformed_envelopes_are_rejected():
    h = _hub(A, B)
    inner = M.encode(M.Hint())
    for frames in ([T.RELAY_TAG + B[:5], *inner], [T.RELAY_TAG + B], [b"\x93\x03\x06"]):
        assert h.forward(A, frames, {A, B}) is None
    assert h.rejected == 3
    assert not T.is_envelope(inner)  # a message header never looks like an envelope


def test_a_worker_reads_envelopes_from_the_hub_only():
    w = _worker()
    inner = M.encode(M.Hint())
    assert w.receive(HUB, T.wrap(B, inner)) == (B, inner)
    assert w.receive(B, T.wrap(C, inner)) is None  # not from the hub
    assert w.receive(HUB, T.wrap(HUB, inner)) is None  # the hub talks directly
    assert w.rejected == 2
    assert T.TunnelRoutes(is_hub=True).receive(HUB, T.wrap(B, inner)) is None


# -- the simulator ------------------------------------------------------------------------

class TunnelSim(RecordingSim):
    """``--broker`` over tunnel routing: worker-to-worker messages go through the hub."""

    def __init__(self, n, seed, config=BROKER):
        ids = [peer_id(i) for i in range(n)]
        self.hub = ids[0]
        self.routes = {}
        for i, pid in enumerate(ids):
            routes = self.routes[pid] = T.TunnelRoutes(is_hub=i == 0)
            if i:
                routes.connect(self.hub)
            for other in ids:
                if other != pid:
                    routes.connect(other)
        self.tags: dict[int, tuple] = {}  # id(packet) -> (packet, hop, sender, target)
        self.relayed: Counter = Counter()
        super().__init__(n, seed, config)
        self._raw_send = self.net.send
        self.net.send = self._send

    def _send(self, src, dst, msg, now=0.0, need_link=True):
        how = self.routes[src].route(dst)
        if how != T.VIA_HUB:
            assert self.hub in (src, dst), f"{src[:1]} sent to {dst[:1]} directly"
            return self._raw_send(src, dst, msg, now, need_link)
        return self._tagged(src, self.hub, msg, 1, src, dst)

    def _tagged(self, src, dst, msg, hop, sender, target):
        if not self._raw_send(src, dst, msg):
            return False
        packet = self.net.links[(src, dst)][-1]
        self.tags[id(packet)] = (packet, hop, sender, target)
        return True

    def deliver(self, link=None):
        if link is None:
            links = self.busy_links()
            if not links:
                return False
            link = links[self.rng.randrange(len(links))]
        tag = self.tags.pop(id(self.net.links[link][0]), None)
        dst, event = self.net.deliver(link)
        if tag is None or type(event) is not Received:
            self._hear(dst, event)
            return True
        _, hop, sender, target = tag
        if hop == 1:  # at the hub: forward by the hub's own rule
            envelope = T.wrap(target, M.encode(event.msg))
            got = self.routes[self.hub].forward(sender, envelope, set(self.alive))
            if got is not None:
                assert T.unwrap(got[1])[0] == sender
                self.relayed[type(event.msg).__name__] += 1
                self._tagged(self.hub, got[0], event.msg, 2, sender, target)
            return True
        self._hear(dst, Received(sender, event.msg, event.works))
        return True

    def in_flight(self):
        """End to end: a relayed packet counts for its final receiver (``Sim.check``)."""
        for packet in self.net.in_flight():
            tag = self.tags.get(id(packet))
            if tag is not None:
                yield tag[2], tag[3], packet
            else:
                yield packet.src, packet.dst, packet


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_work_owned_by_workers_resolves_once_through_the_hub(seed):
    """Only workers make work (nested trees): the hub pulls it for the others, and the
    results go back to their owners through the hub. Leases chain (core/chains.py), so
    the hub is the lessor of every unit a worker got from it and passes the results on
    itself: none needs the tunnel's envelopes."""
    sim = TunnelSim(5, seed)
    sim.submit(sim.ids[2], tree, [(5, 3)])
    sim.submit(sim.ids[3], tree, [(4, 4)])
    sim.run_until_quiet(max_steps=400_000, check_every=500)
    sim.check()
    sim.final_check()
    hub = sim.peers[sim.hub].node
    assert hub.counters.results_forwarded > 0 and not sim.relayed["Results"], sim.relayed
    workers = set(sim.ids[1:])
    assert not [(a, b) for a, b in sim.steals if a in workers and b != sim.hub]


@pytest.mark.parametrize("seed", [1, 2])
def test_the_origins_work_and_the_workers_trees_together(seed):
    sim = TunnelSim(5, seed)
    sim.submit(sim.ids[0], square, [(i,) for i in range(1500)])
    sim.submit(sim.ids[2], tree, [(4, 3)])
    sim.run_until_quiet(max_steps=400_000, check_every=5000)
    sim.check()
    sim.final_check()


@pytest.mark.parametrize("seed", [4, 5])
def test_a_worker_dying_mid_run_loses_nothing_through_the_hub(seed):
    sim = TunnelSim(4, seed)
    origin = sim.ids[0]
    sim.submit(origin, square, [(i,) for i in range(800)])
    sim.submit(sim.ids[1], tree, [(4, 3)])
    for _ in range(3000):
        sim.step()
    victim = sim.ids[3]
    sim.kill(victim, drain=True)  # its last frames still reach the hub, then it is gone
    sim.run_until_quiet(max_steps=400_000, check_every=5000)
    sim.check()
    sim.final_check()
