-- Deleted runs are announced, as migrations 0010/0016 announce inserted and changed ones: on the channel
-- `rmapp_run_removed`, only while someone watches run changes (src/persistence/run-changes.ts; the WHEN
-- reads the watch without a function call, so a delete nobody watches costs nothing more). Retention
-- (src/persistence/retention.ts) deletes finished runs in the workers; the dashboard's live stream
-- (src/rmapp/server/stream.ts) then drops them instead of showing a run that is gone until a reload.
-- Per statement, with the deleted rows as a transition table: a retention batch of 500 runs is one
-- trigger call. One notification per run, `{"id": …, "parent": …}` (a client following a run is told of
-- its children too); a payload over Postgres's 8000-byte limit, which would fail the delete, is sent as
-- `{}`: some run was removed, redraw.
CREATE OR REPLACE FUNCTION "rmapp_notify_runs_removed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('rmapp_run_removed', CASE WHEN octet_length(p) < 8000 THEN p ELSE '{}' END)
    FROM (SELECT json_build_object('id', g."id", 'parent', g."parent_run_id")::text AS p FROM gone g) n;
  RETURN NULL;
END $$;--> statement-breakpoint
DROP TRIGGER IF EXISTS "rmapp_run_deleted" ON "rmapp_runs";--> statement-breakpoint
CREATE TRIGGER "rmapp_run_deleted" AFTER DELETE ON "rmapp_runs" REFERENCING OLD TABLE AS gone FOR EACH STATEMENT
  WHEN (to_timestamp(pg_sequence_last_value('rmapp_run_change_watch_until'::regclass)) > now())
  EXECUTE FUNCTION "rmapp_notify_runs_removed"();
