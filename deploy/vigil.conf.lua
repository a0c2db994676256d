-- vigil.conf.lua — an example config for `vigil serve --config vigil.conf.lua`
-- (or VIGIL_CONFIG=vigil.conf.lua). It exists to show every key in one place;
-- each value below is the default, so this file changes nothing until you
-- edit it (the commented-out lines show keys that are off by default).
--
-- Precedence: command-line flags over VIGIL_* environment variables over this
-- file over the defaults (docs/operations.md, "Configuration", has the table
-- of keys, defaults and variables).
--
-- The file is Lua 5.4 and must return one table. It runs in a sandbox: no io,
-- no require/load/dofile, and `os` has only os.getenv — use it to keep
-- secrets out of the file. Unknown keys are an error (with a "did you mean").
-- Durations: "500ms", "10s", "5m", "1h", "1d", or 0. Sizes: a number of bytes,
-- or "512KiB", "16MiB", "1GiB".

return {
  -- Rules: a directory of rule files, or one file.
  rules = "rules",                                    -- VIGIL_RULES, --rules

  -- HTTP API and dashboard. Without API tokens vigil listens on loopback only.
  listen = "127.0.0.1:8080",                          -- VIGIL_LISTEN, --listen
  -- HTTPS on the API: a PEM certificate (chain) and its unencrypted key, both or neither.
  -- tls_cert = "/etc/vigil/tls/cert.pem",            -- VIGIL_TLS_CERT, --tls-cert
  -- tls_key = "/etc/vigil/tls/key.pem",              -- VIGIL_TLS_KEY, --tls-key (chmod 600)

  -- Processing.
  workers = 2,                -- engine threads, 1..64; VIGIL_WORKERS, --workers
  partitions = 16,            -- key partitions per key group, fixed for a deployment; VIGIL_PARTITIONS
  queue_cap = 65536,          -- events queued per worker; VIGIL_QUEUE_CAP, --queue-cap
  max_body = "16MiB",         -- largest POST /v1/events body; VIGIL_MAX_BODY, --max-body

  -- Events: where the event time and id are. A list means "the first field present".
  time_field = "ts",          -- e.g. {"tx_datetime", "report_datetime"}; VIGIL_TIME_FIELD (a,b), --time-field
  id_field = "id",            -- e.g. {"transaction_id", "report_id"}; VIGIL_ID_FIELD, --id-field
  time_format = "auto",       -- auto | s | ms | rfc3339; VIGIL_TIME_FORMAT, --time-format

  -- Event time.
  allowed_lateness = 0,       -- accept events this far behind the watermark; VIGIL_ALLOWED_LATENESS
  max_out_of_orderness = 0,   -- hold and sort events within this bound; VIGIL_MAX_OUT_OF_ORDERNESS
  idle_timeout = "30s",       -- an idle worker moves its watermark with the clock (0: never); VIGIL_IDLE_TIMEOUT

  -- NATS: events in (vigil.events.>), alerts out (vigil.alerts.<rule>). Off without a url.
  nats = {
    -- url = "nats://127.0.0.1:4222",               -- VIGIL_NATS, --nats (several: "nats://a:4222,nats://b:4222")
    subject = "vigil.events.>",                     -- VIGIL_SUBJECT, --subject
    -- JetStream pull consumer instead of a core subscription (at-least-once in).
    -- `jetstream = true` turns it on with these defaults; a table turns it on too.
    jetstream = false,                              -- VIGIL_JETSTREAM (1/0), --jetstream
    -- jetstream = {
    --   stream = "VIGIL_EVENTS",                   -- VIGIL_STREAM, --stream
    --   consumer = "vigil",                        -- durable consumer; VIGIL_CONSUMER, --consumer
    --   fetch_batch = 1000,                        -- VIGIL_FETCH_BATCH, --fetch-batch
    -- },
    -- Credentials, one kind (or in the URL: "nats://vigil:PASSWORD@nats1:4222"):
    -- user = "vigil",                              -- VIGIL_NATS_USER
    -- password = os.getenv("NATS_PASSWORD"),       -- VIGIL_NATS_PASSWORD
    -- token = os.getenv("NATS_TOKEN"),             -- VIGIL_NATS_TOKEN
    -- creds = "/etc/vigil/vigil.creds",            -- user JWT + NKey seed; VIGIL_NATS_CREDS
    -- TLS: true (system CAs), or a table; a tls:// URL turns it on too.
    -- tls = {
    --   ca = "/etc/vigil/nats-ca.pem",             -- VIGIL_NATS_TLS_CA
    --   cert = "/etc/vigil/nats-client.pem",       -- client certificate, when the server asks; VIGIL_NATS_TLS_CERT
    --   key = "/etc/vigil/nats-client-key.pem",    -- VIGIL_NATS_TLS_KEY
    -- },
  },

  -- Redis state store (off: the memory store, with snapshots in store.data_dir).
  redis = {
    -- url = "redis://127.0.0.1:6379/0",            -- redis://[[user]:password@]host[:port][/db]; VIGIL_REDIS, --redis
    prefix = "vigil",                               -- key prefix; VIGIL_REDIS_PREFIX, --redis-prefix
    -- AUTH on every connection (over the URL's user:password). No TLS with hiredis 0.14:
    -- keep Redis on loopback or a private network, or tunnel it (docs/operations.md).
    -- user = "vigil",                              -- an ACL user; VIGIL_REDIS_USER
    -- password = os.getenv("REDIS_PASSWORD"),      -- VIGIL_REDIS_PASSWORD
  },

  -- Durability of the memory store: snapshots and the webhook outbox file.
  store = {
    data_dir = "./vigil-data",                      -- "" for none; VIGIL_DATA_DIR, --data-dir
    snapshot_interval = "10s",                      -- VIGIL_SNAPSHOT_INTERVAL, --snapshot-interval
    outbox_fsync = true,                            -- fsync the outbox on every commit; VIGIL_OUTBOX_FSYNC
  },

  -- Webhooks (Standard Webhooks v1). The signing secret of every endpoint
  -- that has none of its own; keep it out of the file:
  webhook_secret = os.getenv("VIGIL_WEBHOOK_SECRET"),   -- whsec_…; `openssl rand -base64 32`

  -- At most 16 endpoints; VIGIL_WEBHOOKS (URL,URL…) replaces them with
  -- default-option endpoints, and --webhook URL adds one.
  webhooks = {
    -- "https://hooks.example.com/all-alerts",     -- a bare URL: every option at its default
    -- {
    --   name = "ops",                              -- unique; default "webhook<N>"
    --   url = "https://hooks.example.com/vigil",   -- http:// or https:// (required)
    --   secret = os.getenv("OPS_WEBHOOK_SECRET"),  -- default: webhook_secret
    --   rules = {"card_testing", "velocity"},      -- only these rules' alerts; default: every rule
    --   min_severity = "high",                     -- low | medium | high | critical; default: all
    --   concurrency = 16,                          -- requests in flight
    --   timeout = "5s",                            -- per attempt
    --   backoff = "1s",                            -- first retry delay, doubled per attempt
    --   max_backoff = "1h",                        -- cap on one delay
    --   horizon = "24h",                           -- then the delivery is dead-lettered
    --   max_attempts = 20,                         -- or after this many attempts; default: no limit
    -- },
  },

  -- API bearer tokens (at most 16 here; more in tokens_file). With none, vigil
  -- listens on loopback only. `name` is who the audit log names; `rate` limits an
  -- ingest token (events/s, a burst of one second's worth).
  tokens = {
    -- { name = "shop", token = os.getenv("VIGIL_INGEST_TOKEN"), role = "ingest", rate = 5000 },
    -- { name = "root", token = os.getenv("VIGIL_ADMIN_TOKEN"), role = "admin" },   -- ingest | viewer | analyst | admin
  },
  -- tokens_file = "/etc/vigil/tokens",   -- one "name role token [rate]" a line; chmod 600
  -- metrics_token = os.getenv("VIGIL_METRICS_TOKEN"),   -- when set, GET /metrics needs it

  -- What one client may send or hold (docs/operations.md, "Securing vigil").
  limits = {
    max_fields = 1000,            -- object members in one event (400)
    max_depth = 32,               -- nesting of objects and arrays (400)
    max_key_bytes = 1024,         -- bytes of one key value (400)
    max_lines = 100000,           -- NDJSON lines in one POST (413)
    max_rules = 1000,             -- rules served at once (422)
    max_sse_clients = 64,         -- open alert streams (503)
    max_conns_per_ip = 64,        -- open connections from one address
    request_timeout = "30s",      -- an idle or stalled connection is closed
    max_header_bytes = "32KiB",   -- request line and headers (431)
  },
}
