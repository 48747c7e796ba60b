"""The program's exit status is the launcher's: sys.exit(N) after some parallel work."""
import sys

from scoop import futures

if __name__ == "__main__":
    print("work", sum(futures.map(abs, range(-5, 5))))
    sys.exit(int(sys.argv[1]))
