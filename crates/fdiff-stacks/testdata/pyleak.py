# issue 12's Python leaker: leaky() keeps every file it opens, fine() closes it; called
# alternately for SECS seconds on the main thread or on a thread of its own (MODE "thread").
# It ends with os._exit so that interpreter shutdown does not close the leaked files before
# fdiff's last look. Usage: pyleak.py FILE SECS MODE
import os, sys, time, threading
p = sys.argv[1]; secs = float(sys.argv[2]); mode = sys.argv[3]
fh = []
def leaky():
    fh.append(open(p))
def fine():
    with open(p):
        pass
def loop():
    end = time.time() + secs
    while time.time() < end:
        leaky()
        fine()
        time.sleep(0.01)
if mode == "thread":
    t = threading.Thread(target=loop, name="opener"); t.start(); t.join()
else:
    loop()
time.sleep(0.5)
os._exit(0)
