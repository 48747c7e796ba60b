"""Starting peers: ``local`` spawns worker processes on this machine."""
