"""transport/: the ZeroMQ mesh, its security, and the in-memory transport of the simulator."""
