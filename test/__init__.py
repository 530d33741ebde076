"""
freno's trial suite: unit tests (in memory, Clock-driven) and integration tests
(real twistd, MariaDB, HAProxy and memcached processes on loopback).
"""
