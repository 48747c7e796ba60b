"""transport/: how peers reach each other.

    mesh.py      the ZeroMQ mesh of one peer and the comm thread that owns its sockets
    security.py  the cluster secret, the keys derived from it, CurveZMQ and the ZAP handler

The simulator's in-memory transport lives beside its simulator (``tests/unit/sim.py``). A
transport reports events to its owner (``Received``, ``Disconnected``, ``Tick``) and carries
out the connection commands of the core (``Connect``, ``Admit``, ``Drop``, ``SendRefuse``).
"""
