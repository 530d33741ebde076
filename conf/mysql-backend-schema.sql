-- freno's MySQL consensus backend: the tables in BackendMySQLSchema.
-- The first four are freno's (Go) tables, unchanged except that
-- throttled_apps.expires_at is declared NULL DEFAULT NULL (NULL means "never
-- expires"), which Go freno's DDL only gives when
-- explicit_defaults_for_timestamp is ON; Go freno nodes can share them.
-- The last three are ours (the control plane: audit log, per-app policies,
-- the audit id sequence that is also the change counter every node polls);
-- Go freno never reads them.
-- The service runs these statements itself at start unless it lacks the
-- privilege (freno.consensus.mysql.store.SCHEMA and
-- freno.consensus.mysql.control_tables.CONTROL_SCHEMA hold the same text).
-- An existing freno table can be fixed with:
--   ALTER TABLE throttled_apps MODIFY expires_at TIMESTAMP NULL DEFAULT NULL;

CREATE TABLE IF NOT EXISTS service_election (
  domain varchar(32) NOT NULL,
  share_domain varchar(32) NOT NULL,
  service_id varchar(128) NOT NULL,
  last_seen_active timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (domain),
  KEY share_domain_idx (share_domain,last_seen_active)
);

CREATE TABLE IF NOT EXISTS service_health (
  service_id varchar(128) NOT NULL,
  domain varchar(32) NOT NULL,
  share_domain varchar(32) NOT NULL,
  last_seen_active timestamp NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (service_id),
  KEY last_seen_active_idx (last_seen_active)
);

CREATE TABLE IF NOT EXISTS throttled_apps (
  app_name varchar(128) NOT NULL,
  throttled_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires_at TIMESTAMP NULL DEFAULT NULL,
  ratio DOUBLE,
  PRIMARY KEY (app_name)
);

CREATE TABLE IF NOT EXISTS skipped_hosts (
  host_name varchar(128) NOT NULL,
  skipped_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  expires_at TIMESTAMP NOT NULL,
  PRIMARY KEY (host_name)
);

-- The control plane (freno.consensus.mysql.control_tables).

-- One row, 'audit': the last audit id. Every audited mutation increments it
-- (UPDATE ... SET value = LAST_INSERT_ID(value + 1)) in its own transaction,
-- which serialises mutations: audit ids follow commit order.
CREATE TABLE IF NOT EXISTS freno_sequence (
  name varchar(32) NOT NULL,
  value bigint unsigned NOT NULL,
  PRIMARY KEY (name)
);

-- The audit log: one row per audited command (the last AuditLogSize kept).
-- committed_at: POSIX seconds stamped by the node that accepted the request;
-- params: the request's parameters as JSON; kind/target: what it changed
-- ('app' and the app key, 'host' and the host name, 'policy' and its key).
CREATE TABLE IF NOT EXISTS freno_audit (
  id bigint unsigned NOT NULL,
  committed_at double NOT NULL,
  actor varchar(255) NOT NULL,
  route varchar(1024) NOT NULL,
  params text NOT NULL,
  reason text NULL,
  outcome varchar(1024) NOT NULL,
  kind varchar(16) NOT NULL,
  target varchar(255) NOT NULL,
  PRIMARY KEY (id),
  KEY target_idx (kind, target, id)
);

-- Per-app policies: policy_key is "app" or "app/store".
CREATE TABLE IF NOT EXISTS freno_policies (
  policy_key varchar(255) NOT NULL,
  app varchar(255) NOT NULL,
  store varchar(255) NULL,
  threshold double NULL,
  exempt tinyint(1) NOT NULL DEFAULT 0,
  actor varchar(255) NULL,
  reason text NULL,
  audit_id bigint unsigned NULL,
  updated_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
  PRIMARY KEY (policy_key)
);

INSERT IGNORE INTO freno_sequence (name, value)
  SELECT 'audit', COALESCE(MAX(id), 0) FROM freno_audit;
