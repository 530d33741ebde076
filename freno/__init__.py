"""
freno: a cooperative, highly available throttler for MySQL, on Twisted.

The folder tree is the architecture:

- L{freno.config}: the JSON configuration, loaded and validated once.
- L{freno.consensus}: who is leader, and the replicated throttle state.
- L{freno.inventory}: which hosts make up each cluster.
- L{freno.probe}: probing hosts and aggregating one value per cluster.
- L{freno.throttle}: the check algorithm clients ask.
- L{freno.http}: the HTTP API (a fast check resource plus a Klein app).
- L{freno.publish}: memcache publishing and metrics.
- L{freno.sandbox}: a local MariaDB replication sandbox and cluster launcher.
- L{freno.tap}: the twistd plugin's wiring, the only place that touches the reactor.
"""

__version__ = "0.1.0"
