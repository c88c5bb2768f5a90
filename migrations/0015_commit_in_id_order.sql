-- The batch commit's updates of its runs (src/persistence/commits.ts), one run at a time in run-id order:
-- each update takes its row's lock as it goes, so the batch still locks its runs in id order
-- (docs/engine-internals.md, "Lock order") without first locking them in a `for no key update` CTE, a
-- lock that Postgres logs as a record of its own (Heap/LOCK: 327 B per workflow at c=50,
-- bench/README.md "WAL at c=50"). The fence (lease owner, epoch, version) and the wake-on-signal rule
-- are the statement's: a write that fails its fence updates nothing and returns no row. An update that
-- waited on another transaction's lock sees that transaction's row (r.signal_seq is the latest).
-- `writes` is the commit's payload: one object per write, fields as in the record below.
CREATE OR REPLACE FUNCTION "rmapp_commit_runs"(writes jsonb)
RETURNS TABLE (o_idx int, o_id text, o_version int, o_history_rows int, o_updated_at timestamptz, o_wake_now boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  w record;
BEGIN
  FOR w IN
    SELECT * FROM jsonb_to_recordset(writes) AS t(idx int, id text, expected int, owner text, epoch int, status text,
      snapshot jsonb, state_value jsonb, output jsonb, error jsonb, timers jsonb, steps jsonb, wake_at timestamptz,
      release boolean, final boolean, status_message text, seen_signal_seq int, history text)
    ORDER BY t.id, t.idx
  LOOP
    UPDATE "rmapp_runs" r SET
      "status" = w.status, "snapshot" = w.snapshot, "state_value" = w.state_value, "output" = w.output, "error" = w.error,
      "timers" = w.timers, "steps" = w.steps, "version" = r."version" + 1, "status_message" = w.status_message,
      "history_rows" = r."history_rows" + (json_array_length(w.history::json) > 0)::int,
      "lease_owner" = CASE WHEN w.release THEN NULL ELSE r."lease_owner" END,
      "lease_expires_at" = CASE WHEN w.release THEN NULL ELSE r."lease_expires_at" END,
      -- Left alone while the lease is kept (the renewer extends it), so the update is HOT. A run released
      -- to wait wakes at once if a signal arrived that its session has not read.
      "wake_at" = CASE
        WHEN w.final THEN NULL
        WHEN w.release AND w.status = 'waiting' AND r."signal_seq" > w.seen_signal_seq THEN now()
        WHEN w.release THEN w.wake_at
        ELSE r."wake_at" END,
      "updated_at" = now(),
      "finished_at" = CASE WHEN w.final THEN now() ELSE NULL END
    WHERE r."id" = w.id AND r."version" = w.expected AND r."lease_owner" = w.owner AND r."lease_epoch" = w.epoch
    RETURNING w.idx, r."id", r."version", r."history_rows", r."updated_at",
      (w.release AND w.status = 'waiting' AND r."signal_seq" > w.seen_signal_seq)
    INTO o_idx, o_id, o_version, o_history_rows, o_updated_at, o_wake_now;
    IF FOUND THEN
      RETURN NEXT;
    END IF;
  END LOOP;
END $$;
