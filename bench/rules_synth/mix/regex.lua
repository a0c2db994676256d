-- Five regexes on one field (email): one Hyperscan database, one scan per event.
rule {
  name = "disposable_email_tx", severity = "medium", key = "user",
  where = { type = "tx", amount = gt(200),
            email = matches[[@(mailinator|guerrillamail|10minutemail|trashmail|yopmail)\.(com|net|org)$]] },
  window = sliding("1h"), when = ge(count(), 1), suppress = "1h",
}
rule {
  name = "numeric_email_new_device", severity = "low", key = "user",
  where = { type = "add_device", email = matches[[^[a-z]{1,3}[0-9]{6,}@]] },
  window = sliding("1h"), when = ge(count(), 1),
}
rule {
  name = "alias_email_fails", severity = "low", key = "user",
  where = { type = "login_fail", email = matches[[\+[a-z0-9]{4,}@]] },
  window = sliding("1h"), when = ge(count(), 2), suppress = "1h",
}
rule {
  name = "admin_like_login", severity = "medium", key = "user",
  where = { type = "login", email = matches("^(admin|root|test|support)[._-]?[0-9]*@", "i") },
  window = sliding("1h"), when = ge(count(), 2), suppress = "1h",
}
rule {
  name = "risky_email_change_tx", severity = "high", key = "user",
  pattern = begin("change"):where{ type = "change_email", email = matches[[\.(ru|tk|xyz|top)$]] }
            :followed_by("tx"):where{ type = "tx", amount = gt(300) },
  within = "1h",
}
