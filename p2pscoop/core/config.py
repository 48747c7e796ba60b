"""NodeConfig: every tunable of a peer in one frozen value.

The launcher builds one ``NodeConfig`` and hands it to each peer it starts as one value
(``to_json``/``from_json``), never as a set of environment variables. The core reads the
parts it decides with (``steal``, ``liveness``); the runtime reads the rest. Changing a
default here changes it everywhere; nothing else in the package holds a tunable.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field


@dataclass(frozen=True)
class StealConfig:
    """Stealing, batching and fault policy (``core/policy.py``, ``core/node.py``)."""
    backoff_min: float = 0.0005  # seconds after the first full round of denials
    backoff_max: float = 0.05  # the longest wait between rounds while polling ...
    #: ... for this many full rounds of denials; then the peer waits for a lifeline hint
    #: (``core/policy.py``), asking again only every ``quiet_wait`` seconds: a safety net
    #: for a missed hint, not the way an idle peer learns of new work. (A lone unit whose
    #: owner does not run it, e.g. blocked in the stdlib's ``concurrent.futures.wait``,
    #: reaches a quiet thief through ``stale_after``). 0: quiet after one round (the 32-peer
    #: lab map, 5 interleaved pairs with ``loaded_min``: 1.15 -> 1.13x ideal, median;
    #: the map's end, every idle peer asking each of its links, 33-59 -> 9-28 ms)
    quiet_after: int = 0
    quiet_wait: float = 2.0
    #: a thief asks first the link that last said (GIVE's or HINT's ``left``) it had the
    #: most units queued, if at least this many (``core/policy.py``); 0: never
    loaded_min: int = 2
    #: queued units count as surplus, even one (an owner keeps its last unit for itself
    #: otherwise), when thieves wait for them and this peer has not touched its deque for
    #: this long (seconds): it is blocked outside our scheduler or busy in a long task
    #: (``core/lifelines.py``, ``_stale``)
    stale_after: float = 0.005
    request_timeout: float = 1.0  # an unanswered steal request is forgotten after this
    max_items: int = 256  # work items in one GIVE
    #: a map's unit whose function's recent runs on the victim took less than this
    #: (seconds) stays there: pickling it, its result and the resolution cost the victim
    #: more than running it (``core/lifelines.py``, ``_cheap``); 0: ship whatever is asked.
    #: Measured on 2 peers (maps of busy-waits, never vs always shipped, interleaved):
    #: not shipping was 1.8x faster at 2 us, 1.2x at 5 us; shipping 1.26x faster at 10 us.
    #: Since a stolen range's results go home as one row (``core/ranges.py``), a shipped
    #: unit costs its owner well under a microsecond, so only no-ops stay. The threshold
    #: compares with a unit's measured run here, call included (a 0.5 us busy-wait runs
    #: in about 0.66 us). Measured with ``tools/bench/map_pair.py`` (2 peers, maps of
    #: busy-waits, thresholds interleaved): tasks of 0.3 us were slower shipped (0.77-0.84
    #: against 0.68 us per element kept home), 0.5 us even, 0.6-0.7 us faster (efficiency
    #: 0.41 / 0.47 against 0.35 / 0.37 with 1 us, which kept them home)
    ship_unit: float = 0.0000005
    #: ... while one such unit started on the victim within this (seconds): it is running
    #: through them; otherwise (a long task, a program busy elsewhere) they travel
    drain_window: float = 0.002
    #: of a function not run on the victim yet, one GIVE carries at most this many units
    #: (a probe: a map's first steals come before its victim ran any of it)
    probe_units: int = 16
    max_units: int = 1 << 20  # units in one GIVE
    result_batch: int = 128  # results buffered per owner before a RESULTS goes out
    result_delay: float = 0.002  # ... or after this long
    #: ... but the first result after a quiet spell of ``result_delay`` ships at once: its
    #: owner may be parked on it (the root of a stolen subtree); a stream is still batched
    result_at_once: bool = True
    #: ... and while more units of the same owner wait here (a share of a map), results
    #: linger up to this long to leave together: one RESULTS per task was about half of a
    #: 32-peer map's messages. The owner's last unit here ships its results at once
    result_linger: float = 0.05
    max_deaths: int = 3  # holders that may die running a unit before it fails (poison)
    alone_grace: float = 10.0  # suspects wait this long for a peer before they fail
    broker: bool = False  # SCOOP's star: peers ask the origin only, which pulls for them


@dataclass(frozen=True)
class LivenessConfig:
    """Heartbeats (``core/membership.py``): a silent peer is suspected, then declared dead.

    Three named figures, as in the Paranoid Pirate pattern: the interval between PINGs, and
    the silences after which a peer is suspect and then dead. Heartbeats go to linked peers
    only, and the partial view bounds how many those are (the ``view_*`` figures). A dead or frozen peer is thus
    noticed within ``dead_after`` (plus one tick); a peer whose process dies is noticed at
    once through its dropped connection.
    """
    ping_interval: float = 1.0
    suspect_after: float = 2.5
    dead_after: float = 4.5
    #: the partial view (``docs/scale.md``): links kept beyond the leases' own; a peer
    #: dials known peers while it has fewer than ``view_target`` links, and closes the
    #: newest links it needs for nothing (no lease either way) while it has more than
    #: ``view_size``
    view_size: int = 16
    view_target: int = 6
    gossip: int = 3  # members sampled into each PING (and 4x as many into a WELCOME)
    known_size: int = 64  # peers remembered (not linked) to refill the view from


@dataclass(frozen=True)
class TransportConfig:
    """The ZeroMQ mesh (``transport/``)."""
    max_msg_size: int = 256 * 1024 * 1024  # libzmq drops a peer that sends a larger frame
    linger_ms: int = 500  # how long unsent messages may delay a socket's close
    sndhwm: int = 100_000
    reconnect_ivl_ms: int = 100
    reconnect_max_ms: int = 5000
    #: the comm thread's time slice on Linux 6.12+ (``mesh.shorten_slice``; 0: the OS's)
    comm_slice_us: int = 100
    #: ``--tunnel``: dial the origin only, reach other peers through it (``core/tunnel.py``)
    tunnel: bool = False


@dataclass(frozen=True)
class NodeConfig:
    steal: StealConfig = field(default_factory=StealConfig)
    liveness: LivenessConfig = field(default_factory=LivenessConfig)
    transport: TransportConfig = field(default_factory=TransportConfig)
    switch_interval: float = 0.00005  # GIL switch interval while a peer runs (see Peer.start)
    unknown_length: float = 1.0  # assumed length of a never-run function, for timed waits
    startup_timeout: float = 60.0  # local workers must say HELLO within this
    shutdown_grace: float = 5.0  # then the launcher kills the workers that did not leave
    exit_grace: float = 2.0  # a worker told to stop lets its task finish this long
    #: each peer reports what it does to the program's origin (``runtime/telemetry.py``);
    #: set by the launcher's --progress, --dashboard and --trace
    telemetry: bool = False
    trace: bool = False  # ... and every unit run and steal too (--trace)
    telemetry_interval: float = 0.5  # seconds between two reports of a peer

    def to_json(self) -> str:
        return json.dumps(dataclasses.asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "NodeConfig":
        data = json.loads(text)
        parts = {"steal": StealConfig, "liveness": LivenessConfig,
                 "transport": TransportConfig}
        kwargs = {k: (parts[k](**v) if k in parts else v) for k, v in data.items()}
        return cls(**kwargs)
