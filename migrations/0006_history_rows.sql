ALTER TABLE "rmapp_runs" ADD COLUMN "history_rows" integer DEFAULT 0 NOT NULL;--> statement-breakpoint
UPDATE "rmapp_runs" r SET "history_rows" = h.n FROM (SELECT "run_id", count(*)::int AS n FROM "rmapp_run_history" GROUP BY "run_id") h WHERE h."run_id" = r."id";
