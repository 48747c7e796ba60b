"""Hello world through futures.map: eight greetings, in input order."""
from scoop import futures


def hello(index):
    return "Hello World from Future #{0}".format(index)


if __name__ == "__main__":
    for line in futures.map(hello, range(8)):
        print(line)
