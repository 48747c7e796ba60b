"""SCOOP's module attributes while each peer imports the program, and inside the run."""
import sys

import scoop
from scoop import SIZE, futures

AT_IMPORT = (scoop.IS_RUNNING, scoop.IS_ORIGIN, SIZE, type(scoop.worker).__name__)
if __name__ != "__main__":
    print("worker import", AT_IMPORT, flush=True)


def attributes(_):
    return scoop.IS_RUNNING, scoop.SIZE


if __name__ == "__main__":
    print("origin import", AT_IMPORT, flush=True)
    print("module", scoop.__name__, scoop.futures.__name__, scoop.shared.__name__)
    print("version", scoop.__version__, scoop.__revision__)
    print("debug", scoop.DEBUG, type(scoop.BROKER).__name__)
    print("main", scoop.MAIN_MODULE == __file__)
    print("logger", scoop.logger.name)
    print("constants", scoop.TIME_BETWEEN_PARTIALDEBUG, scoop.CONFIGURATION)
    seen = set(futures.map(attributes, range(50)))
    print("tasks see", sorted(seen))
    from scoop._types import Future, CancelledError
    from scoop.fallbacks import NotStartedProperly
    print("types", isinstance(futures.submit(abs, 1), Future), CancelledError.__module__,
          issubclass(NotStartedProperly, Exception))
    try:
        import scoop.broker.structs  # noqa: F401  (SCOOP's internals do not exist here)
    except ModuleNotFoundError as exc:
        print("internal", exc.name)
    sys.exit(0)
