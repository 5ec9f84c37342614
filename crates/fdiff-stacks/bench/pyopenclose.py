# The Python side of bench/cost.sh: an open+close loop five Python calls deep, timed; prints
# {"iters":K,"ns_per_op":X} like examples/openclose. Usage: pyopenclose.py FILE ITERS
import json, sys, time


def leaf(p):
    open(p).close()


def mid(p, n):
    for _ in range(n):
        leaf(p)


def a(p, n):
    mid(p, n)


def b(p, n):
    a(p, n)


def c(p, n):
    b(p, n)


path, iters = sys.argv[1], int(sys.argv[2])
t = time.perf_counter_ns()
c(path, iters)
print(json.dumps({"iters": iters, "ns_per_op": (time.perf_counter_ns() - t) / iters}))
