-- Whether anyone watches run changes is read without calling the trigger function. Since migration 0011
-- the row triggers ran `rmapp_notify_run_changed` for every insert and commit of a run, and the function
-- found nobody watching in `rmapp_run_change_watch`: an after-trigger event, a PL/pgSQL call and a query
-- per row, ~25 µs of Postgres CPU each — 0.12–0.18 of the database's 0.98–1.04 ms per 6-step workflow at
-- concurrency 50 (bench/cpu-per-workflow.ts, three A/B pairs with the triggers disabled; bench/README.md
-- "Trigger condition"). Now the watch is a sequence whose value is the second (Unix time) it lasts until,
-- and the triggers' WHEN reads it with pg_sequence_last_value: no function call, no event queued, while
-- nobody watches. A sequence because its value is shared by every session and set without a
-- transaction's row version; NULL (never set) means nobody has watched.
CREATE SEQUENCE IF NOT EXISTS "rmapp_run_change_watch_until" AS bigint MINVALUE 0 START WITH 0;--> statement-breakpoint
-- A watch an operator made endless ('infinity', which no bigint holds) stays endless: the largest value.
SELECT setval('rmapp_run_change_watch_until',
    CASE WHEN "until" = 'infinity' THEN 9223372036854775807 ELSE ceil(extract(epoch FROM "until"))::bigint END)
  FROM "rmapp_run_change_watch" WHERE "until" > now();--> statement-breakpoint
-- Who could read or renew the watch can read or renew the sequence (the trigger reads it as the role
-- that writes the run; the dashboard's server renews it). That includes the table's owner when another
-- role runs this migration (a superuser upgrading a database whose tables a worker role owns): the
-- sequence is the migrating role's, and without a grant every run write of the owner would fail
-- (test/adv4-watch-sequence.test.ts).
DO $$
DECLARE a record; table_owner oid;
BEGIN
  SELECT relowner INTO table_owner FROM pg_class WHERE oid = 'rmapp_run_change_watch'::regclass;
  IF table_owner <> (SELECT relowner FROM pg_class WHERE oid = 'rmapp_run_change_watch_until'::regclass) THEN
    EXECUTE format('GRANT SELECT, UPDATE ON SEQUENCE "rmapp_run_change_watch_until" TO %s', quote_ident(pg_get_userbyid(table_owner)));
  END IF;
  FOR a IN SELECT * FROM aclexplode((SELECT relacl FROM pg_class WHERE oid = 'rmapp_run_change_watch'::regclass)) LOOP
    CONTINUE WHEN a.grantee = table_owner OR a.privilege_type NOT IN ('SELECT', 'UPDATE');
    EXECUTE format('GRANT %s ON SEQUENCE "rmapp_run_change_watch_until" TO %s%s', a.privilege_type,
      CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_get_userbyid(a.grantee)) END,
      CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END);
  END LOOP;
END $$;--> statement-breakpoint
-- The watch test compares the sequence's value with now() in seconds (a float8): any value the sequence
-- can hold compares, where to_timestamp(value) failed with "timestamp out of range" past the year
-- 294276 — in every run write, while a watch an operator set that far stood (test/adv4-watch-sequence.test.ts).
-- The WHEN holds only the watch test: Postgres re-reads a trigger's WHEN from its stored form for every
-- statement that fires it, and the batch commit's updates are one statement per run (migration 0015),
-- so its size is paid per run write (the condition on the row's changes, in the WHEN since 0010, was
-- 6 % of the database's CPU at c=50 in a perf profile). The function, called only while someone
-- watches, tests the rest.
CREATE OR REPLACE FUNCTION "rmapp_notify_run_changed"() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'UPDATE' THEN
    -- The status message too: a worker sets it without a new version when it cannot run a run's
    -- definition (src/persistence/runs.ts markUnregisteredVersions), and the stream shows it.
    IF NOT (OLD.version IS DISTINCT FROM NEW.version OR OLD.status IS DISTINCT FROM NEW.status
        OR OLD.status_message IS DISTINCT FROM NEW.status_message
        OR OLD.wake_at IS DISTINCT FROM NEW.wake_at AND NEW.status = 'waiting') THEN
      RETURN NULL;
    END IF;
  END IF;
  PERFORM pg_notify('rmapp_run_changed', NEW.id);
  RETURN NULL;
END $$;--> statement-breakpoint
DROP TRIGGER IF EXISTS "rmapp_run_inserted" ON "rmapp_runs";--> statement-breakpoint
DROP TRIGGER IF EXISTS "rmapp_run_updated" ON "rmapp_runs";--> statement-breakpoint
CREATE TRIGGER "rmapp_run_inserted" AFTER INSERT ON "rmapp_runs" FOR EACH ROW
  WHEN (pg_sequence_last_value('rmapp_run_change_watch_until'::regclass) > date_part('epoch', now()))
  EXECUTE FUNCTION "rmapp_notify_run_changed"();--> statement-breakpoint
CREATE TRIGGER "rmapp_run_updated" AFTER UPDATE ON "rmapp_runs" FOR EACH ROW
  WHEN (pg_sequence_last_value('rmapp_run_change_watch_until'::regclass) > date_part('epoch', now()))
  EXECUTE FUNCTION "rmapp_notify_run_changed"();--> statement-breakpoint
DROP TABLE "rmapp_run_change_watch";
