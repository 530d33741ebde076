-- freno's MySQL consensus backend: the four tables in BackendMySQLSchema.
-- The same as freno's (Go) tables, except that throttled_apps.expires_at is
-- declared NULL DEFAULT NULL (NULL means "never expires"), which Go freno's
-- DDL only gives when explicit_defaults_for_timestamp is ON.
-- The service runs these statements itself at start unless it lacks the
-- privilege (freno.consensus.mysqlbackend_store.SCHEMA holds the same text).
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
