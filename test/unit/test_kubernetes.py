"""
Tests of the Kubernetes manifests in C{conf/kubernetes/} (docs/kubernetes.md):
no cluster runs here, so their fields are checked one by one, and the
ConfigMap's configuration is loaded by freno's own loader as each pod would
load it.
"""

from __future__ import annotations

import glob
import json
import os
import re

import yaml
from twisted.trial.unittest import SynchronousTestCase

from freno.config.loader import apply_overrides, load_config

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MANIFESTS = os.path.join(ROOT, "conf", "kubernetes")
POD_ENV = {
    "POD_IP": "10.1.2.3",
    "FRENO_RAFT_PASSWORD": "raft-secret-raft-secret",
    "FRENO_ADMIN_TOKEN": "admin-token-0123456789abcdef",
    "FRENO_MYSQL_USER": "freno",
    "FRENO_MYSQL_PASSWORD": "x",
}


def documents():
    """
    Every document of every manifest, by C{(kind, name)}.
    """
    found = {}
    for path in sorted(glob.glob(os.path.join(MANIFESTS, "*.yaml"))):
        with open(path, encoding="utf-8") as f:
            for doc in yaml.safe_load_all(f):
                if doc is not None:
                    found[(doc["kind"], doc["metadata"]["name"])] = doc
    return found


class ManifestTests(SynchronousTestCase):
    """
    The manifests say what docs/kubernetes.md says.
    """

    def setUp(self):
        self.docs = documents()
        self.set = self.docs[("StatefulSet", "freno")]
        self.pod = self.set["spec"]["template"]["spec"]
        self.container = self.pod["containers"][0]

    def test_all_in_one_namespace(self):
        """
        Every object has an API version and lives in the namespace the
        manifests create.
        """
        self.assertIn(("Namespace", "freno"), self.docs)
        for (kind, name), doc in self.docs.items():
            self.assertTrue(doc.get("apiVersion"), (kind, name))
            if kind != "Namespace":
                self.assertEqual(doc["metadata"].get("namespace"), "freno", (kind, name))

    def test_headless_service(self):
        """
        The StatefulSet's service is headless, publishes pods before they
        are Ready (raft must flow first), and serves raft and HTTP.
        """
        service = self.docs[("Service", self.set["spec"]["serviceName"])]
        spec = service["spec"]
        self.assertEqual(spec["clusterIP"], "None")
        self.assertIs(spec["publishNotReadyAddresses"], True)
        self.assertEqual(spec["selector"], self.set["spec"]["selector"]["matchLabels"])
        self.assertEqual({p["name"]: p["port"] for p in spec["ports"]}, {"raft": 10008, "http": 8087})
        labels = self.set["spec"]["template"]["metadata"]["labels"]
        self.assertLessEqual(spec["selector"].items(), labels.items())

    def test_probes_on_lb_check(self):
        """
        Readiness and liveness use /lb-check (never /leader-check: only the
        leader would be Ready and a rolling update would stop).
        """
        for probe in ("readinessProbe", "livenessProbe"):
            self.assertEqual(self.container[probe]["httpGet"]["path"], "/lb-check")
            self.assertEqual(self.container[probe]["httpGet"]["port"], "http")
        self.assertNotIn("/leader-check", json.dumps(self.set))

    def test_rolling_update(self):
        """
        A rolling update with a grace period for the hand-off, and a
        disruption budget of one member.
        """
        self.assertEqual(self.set["spec"]["updateStrategy"]["type"], "RollingUpdate")
        self.assertGreaterEqual(self.pod["terminationGracePeriodSeconds"], 10)
        budget = self.docs[("PodDisruptionBudget", "freno")]
        self.assertEqual(budget["spec"]["maxUnavailable"], 1)
        self.assertEqual(budget["spec"]["selector"], self.set["spec"]["selector"])

    def test_raft_secret_from_a_secret(self):
        """
        The raft password comes from a Secret that the manifests define,
        under the key they define.
        """
        env = {e["name"]: e for e in self.container["env"]}
        for variable in ("FRENO_RAFT_PASSWORD", "FRENO_ADMIN_TOKEN", "FRENO_MYSQL_PASSWORD"):
            ref = env[variable]["valueFrom"]["secretKeyRef"]
            secret = self.docs[("Secret", ref["name"])]
            self.assertIn(ref["key"], secret["stringData"])
        self.assertEqual(env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"], "metadata.name")
        self.assertEqual(env["POD_IP"]["valueFrom"]["fieldRef"]["fieldPath"], "status.podIP")

    def test_storage_and_config_mounted(self):
        """
        Each pod has its own volume at the configuration's RaftDataDir, and
        the ConfigMap where the command line reads it.
        """
        mounts = {m["name"]: m["mountPath"] for m in self.container["volumeMounts"]}
        claims = [c["metadata"]["name"] for c in self.set["spec"]["volumeClaimTemplates"]]
        self.assertIn("data", claims)
        config = json.loads(self.docs[("ConfigMap", "freno-config")]["data"]["freno.conf.json"])
        self.assertEqual(mounts["data"], config["RaftDataDir"])
        self.assertIn(f"--config={mounts['config']}/freno.conf.json", self.container["command"])

    def test_pods_load_the_configuration(self):
        """
        Every pod of the StatefulSet, and a pod added by scaling up, loads
        the configuration with its own --raft-bind: the bootstrap pods are
        the RaftNodes, a later pod joins (RaftJoin), members are named by
        their headless-service names, and the raft port listens on the pod
        IP.
        """
        path = os.path.join(self.mktemp())
        with open(path, "w") as f:
            f.write(self.docs[("ConfigMap", "freno-config")]["data"]["freno.conf.json"])
        bind = next(a for a in self.container["command"] if a.startswith("--raft-bind="))
        template = bind.split("=", 1)[1]
        self.assertIn("$(POD_NAME)", template)
        service = self.set["spec"]["serviceName"]
        replicas = self.set["spec"]["replicas"]
        for ordinal in range(replicas + 2):
            raft_bind = template.replace("$(POD_NAME)", f"freno-{ordinal}")
            config = apply_overrides(load_config(path, environ=POD_ENV), raft_bind=raft_bind)
            self.assertEqual(config.raft_bind, f"freno-{ordinal}.{service}:10008")
            self.assertEqual(config.raft_listen_address, "10.1.2.3:10008")
            self.assertEqual(config.raft_password, POD_ENV["FRENO_RAFT_PASSWORD"])
            self.assertEqual(config.raft_bind in config.raft_nodes, ordinal < replicas)
        self.assertEqual(config.raft_nodes, tuple(f"freno-{i}.{service}:10008" for i in range(replicas)))
        self.assertTrue(config.raft_join)

    def test_clients_through_haproxy(self):
        """
        Clients use a Service over HAProxy, whose backend checks
        /leader-check and finds the pods through the headless service.
        """
        client = self.docs[("Service", "freno-client")]
        haproxy = self.docs[("Deployment", "freno-haproxy")]
        self.assertEqual(client["spec"]["selector"], haproxy["spec"]["selector"]["matchLabels"])
        self.assertEqual(client["spec"]["ports"][0]["port"], 8087)
        cfg = self.docs[("ConfigMap", "freno-haproxy")]["data"]["haproxy.cfg"]
        self.assertIn("option httpchk GET /leader-check", cfg)
        self.assertIn("http-check expect status 200", cfg)
        self.assertRegex(cfg, r"server-template \w+ \d+ _http\._tcp\.freno\.freno\.svc\.cluster\.local ")
        self.assertIn("resolvers kubedns", cfg)
        self.assertRegex(cfg, re.compile(r"^\s*bind :8087$", re.M))
