-- The process behind each lease owner of a worker started under an operator-chosen id (src/persistence/
-- worker-processes.ts): a worker started again under that id takes back at once only the runs of a
-- process it can prove gone; the others wait for their leases (README, "One owner at a time").
CREATE TABLE IF NOT EXISTS "rmapp_worker_processes" (
	"owner" text PRIMARY KEY NOT NULL,
	"worker_id" text NOT NULL,
	"pid" integer NOT NULL,
	"process_start" text,
	"boot_id" text,
	"pid_namespace" text,
	"started_at" timestamp with time zone DEFAULT now() NOT NULL
);
--> statement-breakpoint
CREATE INDEX IF NOT EXISTS "rmapp_worker_processes_worker_idx" ON "rmapp_worker_processes" USING btree ("worker_id");--> statement-breakpoint
-- Migrated by another role than the one that owns rmapp_runs (the workers'), the table is that role's:
-- the workers are granted what they do with it, as migration 0017 does for the earlier objects.
DO $$
DECLARE
  runs_owner text := (SELECT pg_get_userbyid(relowner) FROM pg_class WHERE oid = 'rmapp_runs'::regclass);
BEGIN
  IF runs_owner <> current_user THEN
    EXECUTE format('GRANT SELECT, INSERT, UPDATE, DELETE ON TABLE rmapp_worker_processes TO %I', runs_owner);
  END IF;
END $$;
