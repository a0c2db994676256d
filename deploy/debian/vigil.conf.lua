-- /etc/vigil/vigil.conf.lua — the Debian package's config for `vigil serve`
-- under systemd (vigil.service). Every key is described in
-- /usr/share/doc/vigil/operations.md and shown in
-- /usr/share/vigil/vigil.conf.lua.example. After a change: systemctl restart vigil
-- (rules: edit /etc/vigil/rules, then systemctl reload vigil).
return {
  rules = "/etc/vigil/rules",
  listen = "127.0.0.1:8080",       -- loopback until tokens are configured
  store = { data_dir = "/var/lib/vigil" },
  -- redis = "redis://127.0.0.1:6379/0",
  -- nats = { url = "nats://127.0.0.1:4222", jetstream = true },
  -- tokens: /etc/vigil/tokens ("name role token [rate]" a line, chmod 600), handed over by
  -- systemd (uncomment LoadCredential in vigil.service), then:
  -- tokens_file = os.getenv("CREDENTIALS_DIRECTORY") .. "/tokens",
}
