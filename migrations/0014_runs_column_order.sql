-- rmapp_runs rewritten with its columns in a new order: the ones a commit changes after every macrostep
-- (snapshot, state_value, version, history_rows, updated_at, steps) last, everything that stays put
-- while a run executes before them. Postgres logs an update whose new tuple lands on the same page as
-- the old one (a HOT update, and most final updates) without the bytes the two tuples share at their
-- start and at their end (log_heap_update's prefix/suffix compression, wal_level replica), so a commit
-- now logs little more than what changed; before, the changed columns sat between `snapshot` (6th) and
-- `history_rows` (last) and every commit logged input, the lease, the timestamps and the rest in
-- between. Measured figures: bench/README.md, "WAL at c=50". jsonb `null` in output/error becomes SQL
-- null (read the same; 9 bytes less each). The copy rewrites every row once, under an exclusive lock.
-- Fill factor 50 instead of 0001's 70: at concurrency 50 (runs inserted together, updated after every
-- macrostep) 0.63 updates per workflow found no room on their page and were not HOT, each writing a
-- new entry in every index; with 50, 0.17 (`bench/wal-breakdown.ts 3000 50`: 6,610 → 6,330 B per
-- workflow; 30 gave 6,214 but takes 2.3 pages for every one at 70). The price is table size: pages of
-- finished runs stay half empty until those runs are pruned.
LOCK TABLE "rmapp_runs" IN ACCESS EXCLUSIVE MODE;--> statement-breakpoint
-- A view of the operator's over rmapp_runs would make the DROP below fail with Postgres's own words;
-- say which views and what to do instead. The migration is one transaction: nothing changes.
DO $$
DECLARE views text;
BEGIN
  SELECT string_agg(DISTINCT v.oid::regclass::text, ', ') INTO views
  FROM pg_depend d JOIN pg_rewrite r ON r.oid = d.objid JOIN pg_class v ON v.oid = r.ev_class
  WHERE d.classid = 'pg_rewrite'::regclass AND d.refobjid = 'rmapp_runs'::regclass AND v.oid <> 'rmapp_runs'::regclass;
  IF views IS NOT NULL THEN
    RAISE EXCEPTION 'rmapp migration 0014 rebuilds the table rmapp_runs, and these views depend on it: %', views
      USING HINT = 'Drop them, start rmapp again (it migrates), then create them again.';
  END IF;
END $$;--> statement-breakpoint
CREATE TABLE "rmapp_runs_reordered" (
	"id" text NOT NULL,
	"workflow" text NOT NULL,
	"workflow_version" text NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"deadline_at" timestamp with time zone,
	"parent_run_id" text,
	"idempotency_key" text,
	"concurrency_key" text,
	"concurrency_limit" integer,
	"admitted" boolean DEFAULT false NOT NULL,
	"trace_context" text,
	"input" jsonb,
	"lease_epoch" integer DEFAULT 0 NOT NULL,
	"lease_owner" text,
	"lease_expires_at" timestamp with time zone,
	"wake_at" timestamp with time zone,
	"signal_seq" integer DEFAULT 0 NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"status_message" text,
	"output" jsonb,
	"error" jsonb,
	"finished_at" timestamp with time zone,
	"timers" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"snapshot" jsonb,
	"state_value" jsonb,
	"version" integer DEFAULT 0 NOT NULL,
	"history_rows" integer DEFAULT 0 NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"steps" jsonb DEFAULT '{}'::jsonb NOT NULL,
	CONSTRAINT "rmapp_runs_reordered_pkey" PRIMARY KEY("id"),
	CONSTRAINT "rmapp_runs_status_ck" CHECK ("status" in ('pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'))
) WITH (fillfactor = 50);--> statement-breakpoint
INSERT INTO "rmapp_runs_reordered" ("id", "workflow", "workflow_version", "created_at", "deadline_at", "parent_run_id",
  "idempotency_key", "concurrency_key", "concurrency_limit", "admitted", "trace_context", "input", "lease_epoch", "lease_owner",
  "lease_expires_at", "wake_at", "signal_seq", "status", "status_message", "output", "error", "finished_at", "timers", "snapshot",
  "state_value", "version", "history_rows", "updated_at", "steps")
SELECT "id", "workflow", "workflow_version", "created_at", "deadline_at", "parent_run_id",
  "idempotency_key", "concurrency_key", "concurrency_limit", "admitted", "trace_context", "input", "lease_epoch", "lease_owner",
  "lease_expires_at", "wake_at", "signal_seq", "status", "status_message", nullif("output", 'null'::jsonb), nullif("error", 'null'::jsonb),
  "finished_at", "timers", "snapshot", "state_value", "version", "history_rows", "updated_at", "steps"
FROM "rmapp_runs";--> statement-breakpoint
-- The new table is the old one's owner's, whoever runs this (a superuser upgrading a database whose
-- tables the workers' role owns: the workers kept no privilege on their runs table otherwise,
-- test/migrate-owner.test.ts); the privileges other roles hold on the table (a read-only role for
-- reports, say) go to the new one.
-- Column grants, the operator's storage options (autovacuum settings; the fill factor is this
-- migration's) and comments go with them.
DO $$
DECLARE a record; table_owner oid; opts text[];
BEGIN
  SELECT relowner INTO table_owner FROM pg_class WHERE oid = 'rmapp_runs'::regclass;
  EXECUTE format('ALTER TABLE "rmapp_runs_reordered" OWNER TO %I', pg_get_userbyid(table_owner));
  FOR a IN SELECT * FROM aclexplode((SELECT relacl FROM pg_class WHERE oid = 'rmapp_runs'::regclass)) LOOP
    CONTINUE WHEN a.grantee = table_owner;
    EXECUTE format('GRANT %s ON "rmapp_runs_reordered" TO %s%s', a.privilege_type,
      CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
      CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
  END LOOP;
  FOR a IN SELECT att.attname, x.* FROM pg_attribute att CROSS JOIN LATERAL aclexplode(att.attacl) x
      WHERE att.attrelid = 'rmapp_runs'::regclass AND att.attnum > 0 AND NOT att.attisdropped AND att.attacl IS NOT NULL LOOP
    CONTINUE WHEN a.grantee = table_owner;
    EXECUTE format('GRANT %s (%I) ON "rmapp_runs_reordered" TO %s%s', a.privilege_type, a.attname,
      CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
      CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
  END LOOP;
  SELECT array_agg(o) INTO opts FROM unnest((SELECT reloptions FROM pg_class WHERE oid = 'rmapp_runs'::regclass)) o
    WHERE o NOT LIKE 'fillfactor=%';
  IF opts IS NOT NULL THEN
    EXECUTE format('ALTER TABLE "rmapp_runs_reordered" SET (%s)', array_to_string(opts, ', '));
  END IF;
  IF obj_description('rmapp_runs'::regclass, 'pg_class') IS NOT NULL THEN
    EXECUTE format('COMMENT ON TABLE "rmapp_runs_reordered" IS %L', obj_description('rmapp_runs'::regclass, 'pg_class'));
  END IF;
  FOR a IN SELECT att.attname, d.description FROM pg_description d JOIN pg_attribute att ON att.attrelid = d.objoid AND att.attnum = d.objsubid
      WHERE d.classoid = 'pg_class'::regclass AND d.objoid = 'rmapp_runs'::regclass AND d.objsubid > 0 LOOP
    EXECUTE format('COMMENT ON COLUMN "rmapp_runs_reordered".%I IS %L', a.attname, a.description);
  END LOOP;
END $$;--> statement-breakpoint
DROP TABLE "rmapp_runs";--> statement-breakpoint
ALTER TABLE "rmapp_runs_reordered" RENAME TO "rmapp_runs";--> statement-breakpoint
ALTER TABLE "rmapp_runs" RENAME CONSTRAINT "rmapp_runs_reordered_pkey" TO "rmapp_runs_pkey";--> statement-breakpoint
CREATE UNIQUE INDEX "rmapp_runs_idempotency_key_uq" ON "rmapp_runs" USING btree ("idempotency_key") WHERE idempotency_key is not null;--> statement-breakpoint
CREATE INDEX "rmapp_runs_status_idx" ON "rmapp_runs" USING btree ("status","created_at","id");--> statement-breakpoint
CREATE INDEX "rmapp_runs_due_pending_idx" ON "rmapp_runs" USING btree ("wake_at") WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX "rmapp_runs_due_resumed_idx" ON "rmapp_runs" USING btree ("wake_at") WHERE status in ('running', 'waiting');--> statement-breakpoint
CREATE INDEX "rmapp_runs_parent_idx" ON "rmapp_runs" USING btree ("parent_run_id") WHERE parent_run_id is not null;--> statement-breakpoint
CREATE INDEX "rmapp_runs_queue_idx" ON "rmapp_runs" USING btree ("concurrency_key","created_at") WHERE concurrency_key is not null and status = 'pending' and not admitted;--> statement-breakpoint
CREATE INDEX "rmapp_runs_slots_idx" ON "rmapp_runs" USING btree ("concurrency_key") WHERE concurrency_key is not null and admitted and status in ('pending', 'running', 'waiting');--> statement-breakpoint
-- Migration 0010's triggers, gone with the old table (the function they call is unchanged: 0011).
CREATE TRIGGER "rmapp_run_inserted" AFTER INSERT ON "rmapp_runs" FOR EACH ROW EXECUTE FUNCTION "rmapp_notify_run_changed"();--> statement-breakpoint
CREATE TRIGGER "rmapp_run_updated" AFTER UPDATE ON "rmapp_runs" FOR EACH ROW
  WHEN (OLD.version IS DISTINCT FROM NEW.version OR OLD.status IS DISTINCT FROM NEW.status OR OLD.wake_at IS DISTINCT FROM NEW.wake_at AND NEW.status = 'waiting')
  EXECUTE FUNCTION "rmapp_notify_run_changed"();--> statement-breakpoint
-- A new table has no planner statistics until autovacuum analyzes it: the claim and list plans need them.
ANALYZE "rmapp_runs";
