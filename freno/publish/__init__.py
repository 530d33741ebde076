"""
Publishing what this node knows to the outside: aggregated metrics to
memcached (L{freno.publish.memcache}) and every counter, gauge and timer of
L{freno.stats.Stats} as Prometheus text (L{freno.publish.prometheus}).
"""
