"""The sans-I/O core: decisions only, no sockets, threads, greenlets, clocks or global RNG.

``node.NodeState.handle(event, now) -> commands`` is the entry point; ``task`` is the unit
state table, ``deque`` the work deque, ``policy`` the stealing policy, ``messages`` the wire
codec, ``errors`` the error hierarchy. Nothing here imports the rest of p2pscoop.
"""
