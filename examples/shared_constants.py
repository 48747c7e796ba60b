"""Read-only data for every task: ``shared.setConst`` once, ``shared.getConst`` in the tasks.

The program picks a table at run time (Scrabble letter values, English or French, from the
command line) and broadcasts it to every peer once, instead of sending it with each task.
Tasks read it by name. A constant cannot be changed once set.

Run (the argument is optional: english or french):

    python -m p2pscoop -n 2 examples/shared_constants.py french
    python examples/shared_constants.py french     # serial, same output

Expected output: the score of each word, then the last line

    best word: quartz (24 points)        with english (the default)
    best word: enzyme (25 points)        with french

The exit status is 1 if a task saw a different table than the program set.
"""

import sys

from p2pscoop import futures, shared


def letter_table(*groups):
    """{letter: points} from (points, letters) pairs."""
    return {letter: points for points, letters in groups for letter in letters}


TABLES = {
    "english": letter_table((1, "aeilnorstu"), (2, "dg"), (3, "bcmp"), (4, "fhvwy"),
                            (5, "k"), (8, "jx"), (10, "qz")),
    "french": letter_table((1, "aeilnorstu"), (2, "dgm"), (3, "bcp"), (4, "fhv"),
                           (8, "jq"), (10, "kwxyz")),
}
WORDS = ["entropy", "quartz", "lattice", "photon", "enzyme", "vortex", "kinetic", "wave"]


def score(word):
    # Wait up to 10 s: a task may start on a peer before the constant reaches it.
    values = shared.getConst("letter_values", timeout=10)
    if values is None:
        raise RuntimeError("the constant letter_values never arrived")
    return sum(values[letter] for letter in word)


if __name__ == "__main__":
    table = TABLES[sys.argv[1] if len(sys.argv) > 1 else "english"]
    shared.setConst(letter_values=table)
    scores = list(futures.map(score, WORDS))
    for word, points in zip(WORDS, scores):
        print("{0:>8}: {1}".format(word, points))
    expected = [sum(table[letter] for letter in word) for word in WORDS]
    if scores != expected:
        sys.exit("FAILED: expected scores {0}".format(expected))
    print("best word: {1} ({0} points)".format(*max(zip(scores, WORDS))))
