"""
Real-process tests: MariaDB sandboxes, twistd freno nodes, HAProxy, memcached, loopback sockets.
"""
