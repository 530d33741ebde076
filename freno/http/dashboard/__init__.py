"""
The status page: C{GET /dashboard} (and C{/}, which redirects there), served
by any node, and the JSON it polls every second.

    history.py      the leader's ring buffer of each cluster's value (1/s, 15 min)
    leadership.py   the leadership changes this node has seen
    audit_tail.py   the latest audit records, followed incrementally
    sampler.py      the once-a-second service that feeds the three above
    parts.py        the three, built once and shared by the sampler and the views
    cache.py        per-second caching of the JSON views
    views.py        the JSON documents (state, one cluster's hosts, history)
    page.py         the resource: the page, its JSON, the redirect
    static/         the page itself (HTML, CSS and JavaScript, inlined into one answer)
"""
