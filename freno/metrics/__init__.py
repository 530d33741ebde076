"""
The service's metrics: one recording call per event
(L{freno.metrics.registry}), every metric defined once
(L{freno.metrics.catalogue}), and the two documents rendered from them:
freno's C{/debug/vars} (L{freno.metrics.expvar}) and Prometheus' C{/metrics}
(L{freno.metrics.prometheus}). See docs/architecture.md and
docs/decisions.md, D62.
"""
