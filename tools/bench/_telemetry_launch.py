"""``python tools/bench/_telemetry_launch.py [launcher options] prog.py``: the launcher with
telemetry on (every peer reports to the origin; no trace events), for the benchmark backend
``p2pscoop-telemetry``. It stands for ``--progress``/``--dashboard`` without drawing
anything: the launcher's local cluster gets ``NodeConfig(telemetry=True)``, which reaches
every worker as part of its spec. ``--trace`` is backend ``p2pscoop-trace``.
"""

import dataclasses
import sys

from p2pscoop import cli
from p2pscoop.core.config import NodeConfig
from p2pscoop.launch import local

_init = local.LocalCluster.__init__


def _with_telemetry(self, *args, config=None, **kwargs):
    config = dataclasses.replace(config or NodeConfig(), telemetry=True)
    _init(self, *args, config=config, **kwargs)


if __name__ == "__main__":
    local.LocalCluster.__init__ = _with_telemetry
    sys.exit(cli.main(sys.argv[1:]))
