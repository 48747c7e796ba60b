"""The only place where threads, greenlets and sockets live (see ``peer.py`` for the map)."""
