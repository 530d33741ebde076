"""
Host inventory: which hosts make up each cluster (static lists, HAProxy,
ProxySQL, Vitess), refreshed on a schedule, never shrunk by a glitch.
"""
