-- Every change of a run's status or snapshot is announced on the channel rmapp_run_changed (payload:
-- the run id), for the dashboard's live stream (GET /api/stream, README "Dashboard"). A trigger, so
-- that writes of every worker process are announced, whichever process serves the dashboard.
CREATE OR REPLACE FUNCTION "rmapp_notify_run_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  PERFORM pg_notify('rmapp_run_changed', NEW.id);
  RETURN NULL;
END $$;--> statement-breakpoint
CREATE TRIGGER "rmapp_run_inserted" AFTER INSERT ON "rmapp_runs" FOR EACH ROW EXECUTE FUNCTION "rmapp_notify_run_changed"();--> statement-breakpoint
CREATE TRIGGER "rmapp_run_updated" AFTER UPDATE ON "rmapp_runs" FOR EACH ROW
  WHEN (OLD.version IS DISTINCT FROM NEW.version OR OLD.status IS DISTINCT FROM NEW.status OR OLD.wake_at IS DISTINCT FROM NEW.wake_at AND NEW.status = 'waiting')
  EXECUTE FUNCTION "rmapp_notify_run_changed"();
