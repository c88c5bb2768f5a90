-- Whether anyone watches run changes is read without calling the trigger function. Since migration 0011
-- the row triggers ran `rmapp_notify_run_changed` for every insert and commit of a run, and the function
-- found nobody watching in `rmapp_run_change_watch`: an after-trigger event, a PL/pgSQL call and a query
-- per row, ~25 µs of Postgres CPU each — 0.12–0.18 of the database's 0.98–1.04 ms per 6-step workflow at
-- concurrency 50 (bench/cpu-per-workflow.ts, three A/B pairs with the triggers disabled; bench/README.md
-- "Trigger condition"). Now the watch is a sequence whose value is the second (Unix time) it lasts until,
-- and the triggers' WHEN reads it with pg_sequence_last_value: no function call, no event queued, while
-- nobody watches. A sequence because its value is shared by every session and set without a
-- transaction's row version; NULL (never set) means nobody has watched.
-- Its values are the seconds a timestamptz holds (up to 294276-12-31 23:59:59 UTC), so that the
-- triggers' to_timestamp(value) cannot fail: past them it raised "timestamp out of range" in every run
-- write while such a watch stood (an operator's setval; test/adv4-watch-sequence.test.ts). A setval
-- beyond fails itself instead. Comparing in float8 seconds instead (date_part('epoch', now())) would
-- accept any value but cost the WHEN 215 ns instead of 160 ns per run write (1 M evaluations, three
-- interleaved pairs, PG 15).
CREATE SEQUENCE IF NOT EXISTS "rmapp_run_change_watch_until" AS bigint MINVALUE 0 MAXVALUE 9224318015999 START WITH 0;--> statement-breakpoint
-- A watch an operator made endless ('infinity', or a date past the last second) lasts to the last second.
SELECT setval('rmapp_run_change_watch_until', least(ceil(extract(epoch FROM "until")), 9224318015999)::bigint)
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
  WHEN (to_timestamp(pg_sequence_last_value('rmapp_run_change_watch_until'::regclass)) > now())
  EXECUTE FUNCTION "rmapp_notify_run_changed"();--> statement-breakpoint
CREATE TRIGGER "rmapp_run_updated" AFTER UPDATE ON "rmapp_runs" FOR EACH ROW
  WHEN (to_timestamp(pg_sequence_last_value('rmapp_run_change_watch_until'::regclass)) > now())
  EXECUTE FUNCTION "rmapp_notify_run_changed"();--> statement-breakpoint
DROP TABLE "rmapp_run_change_watch";
