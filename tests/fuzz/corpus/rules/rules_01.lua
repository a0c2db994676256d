local function probe(p) return p:where{ type = "auth" } end
local base = probe(begin("login"))
rule { name = "a", key = "user_id", within = "500ms", skip = "no_skip",
  pattern = base:where{ status = ne("ok"), country = exists(), ip = missing() }
    :or_where{ ["card.bin"] = one_of{ "4111", "5500" } }
    :times(2, 4):greedy():consecutive()
    :next("b"):where{ country = ne(ref("login", "country")), amount = between(1, 10) }
    :followed_by_any("c"):where{ email = matches[[@example\.com$]], ua = matches("bot", "i") }
    :optional()
    :followed_by("d"):where{ country = ref("login", "country"), amount = ge(e.limit) }
      :one_or_more():stop_when{ type = "logout" },
}
rule { name = "b", key = "user_id", skip = skip_to_first("x"),
  pattern = base:next("x"):where(gt(e.amount, ref("login", "amount")))
    :followed_by("y"):times_or_more(2) }
rule { name = "c", key = "user_id", skip = skip_to_last("x"), severity = "critical",
  pattern = base:followed_by("x"):where{ amount = le(5) }:where{ amount = ge(1) }:times(3) }
rule { name = "d", key = "card.bin", window = sliding("30d", { precision = "1h" }),
  where = { type = "tx", amount = gt(0) },
  when = any_of{ gt(sum("amount", { type = "tx" }) - -e.amount, 1000),
                 lt(min("amount") / 2, max(e.amount) * 0.5),
                 none_of{ is_new("device_id"), eq(e.card.bin, "4111") },
                 between(avg("amount"), 1, 2), one_of(e.country, { "FR", "DE" }),
                 exists(e.ip), matches(e.email, "x+", "i"), le(count{ type = "refund" }, 3) } }

