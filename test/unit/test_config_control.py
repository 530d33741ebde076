"""
Tests for the control-plane configuration keys: C{ControlTokens},
C{AllowGetMutations}, C{RestrictAuditLog}, C{AuditLogSize}.
"""

from __future__ import annotations

from twisted.trial.unittest import SynchronousTestCase

from freno.config.model import ControlToken
from test.unit.test_config_helpers import ConfigFileMixin, base

OPS = "o" * 16 + "-ops-secret"
DEPLOY = "d" * 16 + "-deploy-secret"


class ControlConfigTests(ConfigFileMixin, SynchronousTestCase):
    """
    The control keys load, default to freno's behaviour, and refuse
    mistakes with one clear line that never shows a token.
    """

    def test_defaults(self):
        """
        Without the keys: no tokens, GET mutations allowed, audit open,
        10,000 audit records.
        """
        config = self.load(base())
        self.assertEqual(config.control_tokens, ())
        self.assertTrue(config.allow_get_mutations)
        self.assertFalse(config.restrict_audit_log)
        self.assertEqual(config.audit_log_size, 10_000)

    def test_tokens_from_environment(self):
        """
        Tokens expand C{${ENV}} like passwords; names and roles are kept.
        """
        config = self.load(
            base(
                ControlTokens={
                    "ops": {"Token": "${FRENO_OPS_TOKEN}", "Role": "admin"},
                    "deploy": {"Token": DEPLOY, "Role": "throttle"},
                },
                AllowGetMutations=False,
                RestrictAuditLog=True,
                AuditLogSize=50,
            ),
            environ={"FRENO_OPS_TOKEN": OPS},
        )
        self.assertEqual(
            config.control_tokens,
            (ControlToken("ops", OPS, "admin"), ControlToken("deploy", DEPLOY, "throttle")),
        )
        self.assertFalse(config.allow_get_mutations)
        self.assertTrue(config.restrict_audit_log)
        self.assertEqual(config.audit_log_size, 50)

    def test_tokens_never_shown(self):
        """
        Neither the token nor the configuration's C{repr} shows a token.
        """
        config = self.load(base(ControlTokens={"ops": {"Token": OPS, "Role": "admin"}}))
        self.assertNotIn(OPS, repr(config))
        self.assertNotIn(OPS, repr(config.control_tokens[0]))
        message = self.fails(base(ControlTokens={"ops": {"Token": 12345678901234567, "Role": "admin"}}))
        self.assertNotIn("12345678901234567", message)

    def test_refused(self):
        """
        Short, empty, unset, duplicated tokens, unknown roles, bad names, a
        restricted audit log without tokens and an out-of-range log size are
        refused naming the key.
        """
        cases = [
            (base(ControlTokens={"ops": {"Token": "short", "Role": "admin"}}), {},
             "ControlTokens.ops.Token: must be at least 16 characters"),
            (base(ControlTokens={"ops": {"Role": "admin"}}), {},
             "ControlTokens.ops.Token: must be at least 16 characters"),
            (base(ControlTokens={"ops": {"Token": "${NOPE}", "Role": "admin"}}), {},
             "ControlTokens.ops.Token: environment variable NOPE is not set"),
            (base(ControlTokens={"ops": {"Token": "${EMPTY}", "Role": "admin"}}), {"EMPTY": ""},
             "ControlTokens.ops.Token: environment variable EMPTY is empty"),
            (base(ControlTokens={"a": {"Token": OPS, "Role": "admin"}, "b": {"Token": OPS, "Role": "audit"}}), {},
             'ControlTokens.b.Token: is the same as the token of "a"'),
            (base(ControlTokens={"ops": {"Token": OPS, "Role": "root"}}), {},
             'ControlTokens.ops.Role: expected one of "throttle", "operator", "admin", "audit", got "root"'),
            (base(ControlTokens={" ops": {"Token": OPS, "Role": "admin"}}), {},
             "a token name must be non-empty"),
            (base(ControlTokens={"o" * 65: {"Token": OPS, "Role": "admin"}}), {},
             "a token name is at most 64 characters"),
            (base(ControlTokens={"ops": {"Token": OPS, "Role": "admin", "Extra": 1}}), {},
             "ControlTokens.ops.Extra: unknown key"),
            (base(ControlTokens=[]), {}, "ControlTokens: expected an object"),
            (base(RestrictAuditLog=True), {}, "RestrictAuditLog: needs ControlTokens"),
            (base(AuditLogSize=0), {}, "AuditLogSize: expected an integer"),
            (base(AuditLogSize=10**7), {}, "AuditLogSize: expected an integer"),
            (base(AllowGetMutations="no"), {}, "AllowGetMutations: expected true or false"),
        ]
        for doc, environ, expected in cases:
            message = self.fails(doc, environ)
            self.assertIn(expected, message)
            self.assertNotIn(OPS, message)

    def test_case_insensitive_keys(self):
        """
        Keys match case-insensitively, as freno's.
        """
        config = self.load(
            base(controltokens={"ops": {"token": OPS, "role": "operator"}}, allowgetmutations=False)
        )
        self.assertEqual(config.control_tokens[0].role, "operator")
        self.assertFalse(config.allow_get_mutations)
