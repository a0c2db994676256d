-- Patterns of 2-4 steps: quantifiers, contiguities, negation, absence, ref().
rule {
  name = "account_takeover", severity = "critical", key = "user",
  pattern = begin("reset"):where{ type = "reset" }
            :followed_by("login"):where{ type = "login", country = ne(ref("reset", "country")) }
            :followed_by("tx"):where{ type = "tx", amount = gt(250) },
  within = "1h",
}
rule {
  name = "brute_force_success", severity = "high", key = "user",
  pattern = begin("fail"):where{ type = "login_fail" }:times_or_more(3)
            :next("ok"):where{ type = "login" },
  within = "1h",
}
rule {
  name = "card_testing", severity = "high", key = "user",
  pattern = begin("probe"):where{ type = "tx", amount = lt(3) }:times(2, 4)
            :followed_by("cashout"):where{ type = "tx", amount = gt(400) },
  within = "1h",
}
rule {   -- absence: fires when the hour passes without a logout
  name = "big_tx_no_logout", severity = "low", key = "user",
  pattern = begin("login"):where{ type = "login" }
            :followed_by("big"):where{ type = "tx", amount = gt(1000) }
            :not_followed_by("out"):where{ type = "logout" },
  within = "1h",
}
rule {
  name = "unverified_device_spend", severity = "high", key = "user",
  pattern = begin("device"):where{ type = "add_device" }
            :not_followed_by("verify"):where{ type = "verify" }
            :followed_by("tx"):where{ type = "tx", amount = gt(150) },
  within = "1h",
}
rule {
  name = "email_change_cashout_30d", severity = "high", key = "user",
  pattern = begin("change"):where{ type = "change_email" }
            :followed_by("reset"):where{ type = "reset" }
            :followed_by_any("cash"):where{ type = "tx", amount = gt(600) },
  within = "30d",
}
rule {
  name = "fail_reset_login_tx", severity = "high", key = "user",
  pattern = begin("fail"):where{ type = "login_fail" }:times_or_more(2)
            :followed_by("reset"):where{ type = "reset" }:optional()
            :followed_by("login"):where{ type = "login" }
            :followed_by("tx"):where{ type = "tx", amount = gt(200) },
  within = "1h",
}
rule {
  name = "geo_jump", severity = "medium", key = "user",
  pattern = begin("a"):where{ type = "login" }
            :next("b"):where{ type = "login", country = ne(ref("a", "country")) },
  within = "1h",
}
