"""A liveness bug, now fixed (found by ``test_simulation``'s state machine): a relayed GIVE that is
lost with its link leaves the owner's unit leased to a live peer that never got it.

The unit's owner A leases it to B; B relays it to F and tells A (``MOVED`` to F); the link
B-F then fails both ways (a false failure detection between B and F only, e.g. a heartbeat
timeout in cluster mode), so the GIVE on it is lost, and the link heals. A still sees F alive
and keeps the unit LEASED to F; F never had it, B no longer has it, nobody re-dispatches it:
the program waits forever. A dead holder is handled (``PeerDown`` at A re-dispatches); a lost
message between two live peers is not.

Hypothesis reproduction (before this file): ``pytest tests/unit/test_simulation.py -k
TestSimulation --hypothesis-seed=32381499629541674333668869733774832544``, "not quiet after
15300 steps ... missing=[(b'AAAAAAAAAAAAAAAA', 0, 51)]", unit 51 LEASED to F.

Fixed: the peer named by a MOVED must confirm with HOLDING within ``confirm_timeout``;
otherwise the owner runs the units again (a late result is a duplicate).
"""

from p2pscoop.core import task as T
from p2pscoop.core.messages import Steal
from p2pscoop.core.node import Received

from sim import Sim, square


def test_a_relayed_give_lost_with_its_link_is_run_after_all():
    sim = Sim(3, seed=0)
    a, b, f = sim.ids
    job = sim.submit(a, square, [(0,), (1,)])
    # b's steal request reaches a: a leases unit 1 to b, and the GIVE reaches b
    sim._feed(a, Received(b, Steal(1)))
    sim.deliver((a, b))
    assert sim.peers[a].node.jobs[job].holders == {1: b}
    # f's steal request reaches b: b relays unit 1 to f and tells a
    sim._feed(b, Received(f, Steal(1)))
    assert sim.busy_links() and (b, f) in sim.busy_links() and (b, a) in sim.busy_links()
    # the b-f link fails both ways (the GIVE is lost) and comes back
    sim.cut(b, f)
    sim.heal(frozenset((b, f)))
    sim.deliver((b, a))  # the MOVED: a now believes f holds unit 1
    assert sim.peers[a].node.unit_state(job, 1) == T.LEASED
    sim.run_until_quiet(max_steps=20_000)
    sim.final_check()
