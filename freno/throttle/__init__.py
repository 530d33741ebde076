"""
The throttle core: the check algorithm clients ask (L{checker.Throttler}), its
result (L{result.CheckResult}) and per-request flags (L{flags.CheckFlags}),
plus the small local records it keeps: recent apps (L{recent}), the
low-priority denial window (L{lowpriority}) and the check counters
(L{counters}).

Nothing here knows about HTTP or imports the reactor: time comes from an
injected clock, randomness from an injected C{random()} callable.
"""
