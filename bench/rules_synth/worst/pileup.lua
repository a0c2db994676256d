-- Partial-match worst case (issue 3, item 5): patterns that start at every
-- login and never complete (no amount is that large), with a 6 h within,
-- so one key's logins pile up runs until max_runs evicts the oldest.
rule {   -- skip-till-any-match: every run waits forever
  name = "pileup_any", severity = "info", key = "user",
  pattern = begin("a"):where{ type = "login" }
            :followed_by_any("b"):where{ type = "tx", amount = gt(1e12) },
  within = "6h",
}
rule {   -- skip-till-next-match: the same with relaxed contiguity
  name = "pileup_next", severity = "info", key = "user",
  pattern = begin("a"):where{ type = "login" }
            :followed_by("b"):where{ type = "tx", amount = gt(1e12) },
  within = "6h",
}
rule {   -- a Kleene loop: every login both extends each run and starts one (branching)
  name = "pileup_loop", severity = "info", key = "user",
  pattern = begin("a"):where{ type = "login" }:one_or_more()
            :followed_by("b"):where{ type = "tx", amount = gt(1e12) },
  within = "6h",
}
