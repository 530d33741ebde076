"""
Publishing what this node knows to the outside: aggregated metrics to
memcached (L{freno.publish.memcache}). The C{/metrics} export lives with the
other metrics in L{freno.metrics}.
"""
