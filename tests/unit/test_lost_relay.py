"""A liveness bug of the earlier protocol, and why chained leases cannot have it.

Before leases chained, a peer that passed on another owner's unit told the owner (``MOVED``),
and the owner kept the unit leased to the new holder. The owner A leased a unit to B; B
passed it to F and told A; the B-F link then failed both ways (a false failure detection
between B and F only), so the GIVE on it was lost, and the link healed. A still saw F alive
and kept the unit LEASED to F; F never had it, B no longer had it, nobody re-dispatched it:
the program waited forever (found by ``test_simulation``'s state machine, fixed then with a
HOLDING confirmation and a deadline).

Now B leases the unit to F itself (``core/chains.py``) and answers for it to A: the link
that lost the GIVE is the very link whose failure B sees, so B re-dispatches the unit (as a
suspect: F may have died running it), and A, which leased it to B, has nothing to do.
"""

from p2pscoop.core import task as T
from p2pscoop.core.messages import Steal
from p2pscoop.core.node import Received

from sim import Sim, square


def test_a_give_lost_with_its_link_is_re_dispatched_by_the_peer_that_sent_it():
    sim = Sim(3, seed=0)
    a, b, f = sim.ids
    job = sim.submit(a, square, [(0,), (1,)])
    # b's steal request reaches a: a leases unit 1 to b, and the GIVE reaches b
    sim._feed(a, Received(b, Steal(1)))
    sim.deliver((a, b))
    assert sim.peers[a].node.jobs[job].holders == {1: b}
    # f's steal request reaches b: b leases unit 1 on to f (nothing goes to a)
    sim._feed(b, Received(f, Steal(1)))
    assert sim.busy_links() == [(b, f)]
    assert sim.peers[b].node.relays[(a, job)].holders == {1: f}
    # the b-f link fails both ways (the GIVE is lost) and comes back
    sim.cut(b, f)
    sim.heal(frozenset((b, f)))
    node = sim.peers[b].node
    assert list(node.chain_suspects) == [(a, job, 1)] and not node.relays[(a, job)].holders
    # a still leases unit 1 to b, which answers for it: it runs, once, and resolves
    assert sim.peers[a].node.unit_state(job, 1) == T.LEASED
    sim.run_until_quiet(max_steps=20_000)
    sim.final_check()


def test_a_suspect_sent_home_stays_a_suspect_there():
    """b's suspect (f died, or seemed to, holding it) goes home when its owner a, which
    leased it to b itself, is the thief: GIVE's ``suspects`` carry its death, so a keeps
    it as a suspect (never run by a: it may kill the process that runs it), where before
    a queued it as plain work and ran it (found by reading ``chains.py``)."""
    sim = Sim(3, seed=0)
    a, b, f = sim.ids
    job = sim.submit(a, square, [(0,), (1,)])
    sim._feed(a, Received(b, Steal(1)))
    sim.deliver((a, b))
    sim._feed(b, Received(f, Steal(1)))
    sim.cut(b, f)
    sim.heal(frozenset((b, f)))
    assert list(sim.peers[b].node.chain_suspects) == [(a, job, 1)]
    # a asks b for work: b sends the suspect home, with its death
    sim._feed(b, Received(a, Steal(2)))
    sim.deliver((b, a))
    owner = sim.peers[a].node
    assert owner.unit_state(job, 1) == T.PENDING
    assert list(owner.suspects) == [(job, 1)] and owner.jobs[job].deaths == {1: 1}
    assert not any(w.job == job and w.lo <= 1 < w.hi for w in owner.deque)
    sim.run_until_quiet(max_steps=20_000)
    sim.final_check()
