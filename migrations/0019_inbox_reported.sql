-- A buffered signal's `signal.buffered` report is marked on its inbox row, by the commit that writes the
-- report (src/persistence/commits.ts), instead of being searched for in the run's history on every read
-- of the inbox: that search decoded every history row of the run for each buffered signal read, O(kept
-- signals × history rows) per read — 100 kept signals on a run with 2,000 history rows took 3.8 s, and a
-- read past the statement timeout left the run never taking its signals (bench/README.md, "twelfth
-- session"). The rows already reported are marked here once, from the history: those whose report is
-- there, and those sent before a compaction folded some `signal.buffered` reports into a summary
-- (src/persistence/retention.ts; the summary keeps counts, not ids: a signal is reported when first
-- read, and a signal wakes its run, so one sent before the folded span ended was reported in it).
ALTER TABLE "rmapp_run_inbox" ADD COLUMN IF NOT EXISTS "reported" boolean DEFAULT false NOT NULL;--> statement-breakpoint
UPDATE "rmapp_run_inbox" i SET "reported" = true
  WHERE i."consumed_at" IS NULL AND i."keep_until" IS NOT NULL AND EXISTS (
    SELECT 1 FROM "rmapp_run_history" h, jsonb_array_elements(rmapp_history_events(h."events", h."log")) e
    WHERE h."run_id" = i."run_id" AND (
      (e->>'type' = 'signal.buffered' AND (e->'data'->>'id')::float8 = i."id"::float8)
      OR (e->>'type' = 'history.compacted' AND coalesce((e->'data'->'byType'->>'signal.buffered')::bigint, 0) > 0
        AND i."created_at" <= h."at")));
