"""
The twistd plugin: points C{twistd freno} at L{freno.tap}. No logic lives here.
"""

from twisted.application.service import ServiceMaker

freno = ServiceMaker(
    "freno",  # the human-readable name
    "freno.tap",  # the module holding Options and makeService
    "A cooperative, highly available throttler for MySQL.",  # the description
    "freno",  # the tapname: `twistd freno`
)
