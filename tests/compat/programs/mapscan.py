"""futures.mapScan: inclusive prefix scans (SCOOP 0.7 got all but the last wrong)."""
import operator

from scoop import futures

if __name__ == "__main__":
    print("sums", futures.mapScan(abs, operator.add, range(1, 9)))
    print("strings", futures.mapScan(str, operator.add, range(10)))
    print("products", futures.mapScan(abs, operator.mul, range(1, 8)))
    print("long ok", futures.mapScan(abs, operator.add, range(500))
          == [n * (n + 1) // 2 for n in range(500)])
    print("one", futures.mapScan(abs, operator.add, [-5]))
    print("empty", futures.mapScan(abs, operator.add, []))
