-- History rows written by a commit keep their events in "log", a compact JSON text form
-- (src/persistence/history-codec.ts), instead of "events" jsonb objects: less WAL per workflow
-- (bench/README.md). Older rows and rows appended in SQL keep "events"; no row is rewritten.
ALTER TABLE "rmapp_run_history" ALTER COLUMN "events" DROP NOT NULL;--> statement-breakpoint
ALTER TABLE "rmapp_run_history" ADD COLUMN "log" json;--> statement-breakpoint
ALTER TABLE "rmapp_run_history" ADD CONSTRAINT "rmapp_run_history_events_ck" CHECK ("rmapp_run_history"."events" is not null or "rmapp_run_history"."log" is not null);--> statement-breakpoint
-- A row's events as jsonb objects whichever form it has, for statements that search history in SQL.
CREATE OR REPLACE FUNCTION "rmapp_history_events"(events jsonb, log json) RETURNS jsonb LANGUAGE sql IMMUTABLE AS $$
  SELECT CASE WHEN log IS NULL THEN events ELSE (
    SELECT coalesce(jsonb_agg(jsonb_build_object('type', e->>0)
      || CASE WHEN coalesce(json_typeof(e->1), 'null') = 'null' THEN '{}'::jsonb ELSE jsonb_build_object('path', e->1) END
      || CASE WHEN coalesce(json_typeof(e->2), 'null') = 'null' THEN '{}'::jsonb ELSE jsonb_build_object('state', e->2) END
      || CASE WHEN coalesce(json_typeof(e->3), 'null') = 'null' THEN '{}'::jsonb ELSE jsonb_build_object('step', e->3) END
      || CASE WHEN coalesce(json_typeof(e->4), 'null') = 'null' THEN '{}'::jsonb ELSE jsonb_build_object('attempt', e->4) END
      || CASE WHEN coalesce(json_typeof(e->5), 'null') = 'null' THEN '{}'::jsonb ELSE jsonb_build_object('data', e->5) END
      ORDER BY n), '[]'::jsonb)
    FROM json_array_elements(log) WITH ORDINALITY AS t(e, n)) END
$$;
