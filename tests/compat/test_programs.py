"""SCOOP programs run unchanged under ``python -m p2pscoop``: exact output, exact status.

``CASES`` is the table (program, arguments, expected stdout, expected status); every row
runs in every topology of ``conftest.MODES``. ``{tmp}`` in an argument becomes a fresh
temporary directory. The programs' docstrings say what each one exercises; the expected
outputs are what the serial Python meaning of the program gives (SCOOP 0.7 itself gets
``mapScan`` and the empty/single ``mapReduce`` wrong, and exits 0 whatever happens).
"""

import textwrap

import pytest

pytestmark = pytest.mark.timeout(300)


def lines(text: str) -> str:
    return textwrap.dedent(text).lstrip("\n")


CASES = [
    ("hello", [], "".join(f"Hello World from Future #{i}\n" for i in range(8)), 0),
    ("tree", [], "nodes 364\nexpected 364\n", 0),
    ("fib", [], "[0, 1, 1, 2, 3, 5, 8, 13, 21, 34]\nfib(16) = 987\n", 0),
    ("lambdas", [], lines("""
        lambda [0, 1, 4, 9, 16, 25]
        default [100, 101, 102, 103, 104, 105]
        closure [1000, 1001, 1002, 1003, 1004, 1005]
        partial [0, 1, 8, 27, 64, 125]
        method [0, 7, 14, 21, 28, 35]
        callable [0, -2, -4, -6, -8, -10]
        submit 20
        nested [0, 0, 1, 3, 6, 10]
        """), 0),
    ("objects", [], "moved [" + ", ".join(f"p{i}(x={i + 10 * (i + 1)}, steps=10)"
                                          for i in range(5)) + "]\n"
                    "types ['Particle']\nsets [[0], [0, 1], [0, 1, 2]]\n", 0),
    ("shared_consts", [], lines("""
        values [0, 6, 24, 54, 96, 150, 216, 294, 384, 486]
        local 2
        redefine TypeError This constant already exists: scale.
        still 2
        missing None
        lambda constant [7, 8, 9]
        """), 0),
    ("mergesort", [], "sorted True 5000\nends [18, 28, 95] [99973, 99979, 99985]\n", 0),
    ("mapreduce", [], lines("""
        sum of squares 338350
        concat 01234567891011
        two iterables 32
        one 49
        none with initial 0
        none TypeError
        """), 0),
    ("mapscan", [], lines("""
        sums [1, 3, 6, 10, 15, 21, 28, 36]
        strings {strings}
        products [1, 2, 6, 24, 120, 720, 5040]
        long ok True
        one [5]
        empty []
        """).format(strings=["0123456789"[:k] for k in range(1, 11)]), 0),
    ("completed", [], lines("""
        map_as_completed [0, 1, 8, 27, 64, 125, 216, 343, 512, 729]
        as_completed [0, 1, 8, 27, 64, 125]
        wait 6 0
        errors ['ValueError']
        first completed True
        """), 0),
    ("callbacks", [], "values [0, 10, 20, 30, 40, 50, 60, 70]\nall here True\n"
                      "already done [0]\n", 0),
    ("timeouts", ["{tmp}/gate"], lines("""
        result timeout
        exception timeout
        wait 0 1
        as_completed timeout
        map timeout
        negative means no limit 4
        after the gate 1 [2, 3]
        """), 0),
    ("exactly_once", ["{tmp}/log"], "returned 480\nrecorded 480 distinct 480\ntwice []\n", 0),
    ("unpicklable", [], lines("""
        submit refused PayloadError
        unpicklable result PayloadError
        map [2] PayloadError
        still running 5050
        """), 0),
    ("travel", [], "ran elsewhere True origin False running True\nvalue 42\n", 0),
    ("exit_code", ["5"], "work 25\n", 5),
    ("exit_code", ["0"], "work 25\n", 0),
    ("unguarded", [], "result 100\n", 3),
]


@pytest.mark.parametrize("name,args,expected,status", CASES,
                         ids=[f"{c[0]}{'-' + c[1][0] if c[1] and '{' not in c[1][0] else ''}"
                              for c in CASES])
def test_program_output(scoop_run, tmp_path, name, args, expected, status):
    args = [a.replace("{tmp}", str(tmp_path)) for a in args]
    res = scoop_run(name, *args)
    assert res.stdout == expected, res
    assert res.code == status, res
    # SCOOP printed these once per worker; a worker importing the program is not running it
    for noise in ("RuntimeWarning", "is not running", "could not import", "Traceback"):
        assert noise not in res.stderr, res
