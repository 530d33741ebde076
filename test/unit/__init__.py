"""
In-memory tests: no real processes, sockets or ports; they run in seconds (make unit).
"""
