"""transport/: how peers reach each other.

    mesh.py      the ZeroMQ mesh of one peer and the comm thread that owns its sockets
    secret.py    the cluster secret: its file, its lookup, the keys derived from it (HKDF)
    security.py  CurveZMQ on every socket, the ZAP handler that admits only this cluster
    memory.py    the in-memory transport of the simulators (no sockets, threads or clock)

A transport reports events to its owner (``Received``, ``Disconnected``, ``Tick``) and carries
out the connection commands of the core (``Connect``, ``Admit``, ``Drop``, ``SendRefuse``).
"""
