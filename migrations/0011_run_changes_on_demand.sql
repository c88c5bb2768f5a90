-- Migration 0010's announcements cost every commit a NOTIFY even when nobody watches: Postgres wakes
-- every listening backend of the database (each worker's LISTEN connection reads the queue in a
-- transaction of its own, so pg_stat_database counted 14 commits per 6-step run instead of 7) and
-- commits that notify take a database-wide lock in turn. Measured (`npm run bench` sizes, same day):
-- c=1 89–118 wf/s with the trigger, 130–148 without; c=50 372–435 against 488–519.
-- Now a dashboard's live stream says it is watching (`until` in the future, renewed while it has
-- clients: src/persistence/run-changes.ts) and the trigger announces only then.
CREATE TABLE IF NOT EXISTS "rmapp_run_change_watch" (
  "id" smallint PRIMARY KEY DEFAULT 1 CHECK ("id" = 1),
  "until" timestamptz NOT NULL
);--> statement-breakpoint
INSERT INTO "rmapp_run_change_watch" ("id", "until") VALUES (1, '-infinity') ON CONFLICT DO NOTHING;--> statement-breakpoint
CREATE OR REPLACE FUNCTION "rmapp_notify_run_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF EXISTS (SELECT 1 FROM "rmapp_run_change_watch" WHERE "until" > now()) THEN
    PERFORM pg_notify('rmapp_run_changed', NEW.id);
  END IF;
  RETURN NULL;
END $$;
