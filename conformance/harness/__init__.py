"""Client mode: the suite hosts a harness center that a client under test (app, reader gateway,
agency) connects to, tells it what to do (a scenario, through a small control API or on the
console), records everything that arrives and injects faults; the client profile's cases then
check the recording against the standard. See conformance/harness/README.md.
"""
