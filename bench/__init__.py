import os

# Benchmarks measure load: the per-caller rate limits (on by default) would refuse it. The
# submit section turns them back on, set high enough to count and never refuse, to measure
# what they cost.
os.environ.setdefault("CREWGATE_RATE_LIMIT_SUBMIT", "")
os.environ.setdefault("CREWGATE_RATE_LIMIT_READ", "")
