"""
The seam between the prober and MySQL: L{IMetricSource}.
"""

from __future__ import annotations

from zope.interface import Interface


class ProbeError(Exception):
    """
    One probe failed. C{str(error)} is the message a check shows (for example
    C{"replication not running; Slave_IO_Running=No, Slave_SQL_Running=Yes"}).
    """


class IMetricSource(Interface):
    """
    Reads one host's metric.
    """

    def probe(cluster, host):
        """
        Run C{cluster.metric_query} (a L{freno.config.model.ClusterSettings})
        on C{host} (a L{freno.hosts.HostKey}).

        @return: a Deferred firing with the metric as a float, or failing with
            L{ProbeError}. It fires within the configured probe timeout.
        """

    def close():
        """
        Close every connection.

        @return: a Deferred firing when closed.
        """
