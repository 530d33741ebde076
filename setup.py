"""
Packaging for freno. C{pip install .} makes C{twistd freno} and the
C{freno-cli} command available.
"""

from setuptools import find_packages, setup

setup(
    name="freno",
    version="0.1.0",
    description="A cooperative, highly available throttler for MySQL, on Twisted",
    packages=find_packages(exclude=["test", "test.*", "bench"]) + ["twisted.plugins"],
    package_data={
        "twisted.plugins": ["freno_plugin.py"],
        # the status page (freno.http.dashboard.page reads them at start)
        "freno.http.dashboard": ["static/*.html", "static/*.css", "static/*.js"],
    },
    python_requires=">=3.11",
    entry_points={"console_scripts": ["freno-cli = freno.client.cli:main"]},
    install_requires=[
        "twisted[tls]>=24.7",
        "klein>=24.8",
        "treq>=24.9",
        # pinned: the reactor bridge uses pysyncobj's private poller hooks.
        "pysyncobj==0.3.17",
        "cryptography>=42",
        "attrs>=23.1",
        # 1.2.4: its "preferred" TLS mode (freno.probe.pymysql_tls relies on it).
        "PyMySQL>=1.2.4",
        "prometheus-client>=0.20",
        # the fast check protocol's request-head parser (freno.http.fast_check).
        "httptools>=0.6",
    ],
    extras_require={
        "mysqlclient": ["mysqlclient>=2.2"],
        # PyMySQL's client_ed25519 (MariaDB) authentication, the fallback for
        # users the native probe driver cannot log in.
        "ed25519": ["PyNaCl>=1.4"],
        # PyYAML: test_kubernetes parses conf/kubernetes/*.yaml. playwright
        # drives Debian's chromium (make deps installs it) for the status
        # page's browser tests; it never downloads a browser.
        "test": ["hypothesis>=6.100", "ruff>=0.6", "PyNaCl>=1.4", "PyYAML>=6", "playwright>=1.40"],
    },
)
