-- Step paths' counts of finished executions that nothing uses any more move out of "steps", a batch at
-- a time, into their own column (src/state_machine/step-book.ts): every commit rewrote "steps" whole,
-- one entry per path the run had ever used, so a loop that runs a step per item under the item's id
-- cost more per item the longer it ran (bench/README.md, "fourteenth session"). A nullable column
-- without a default: adding it rewrites nothing (and applying it again changes nothing).
ALTER TABLE "rmapp_runs" ADD COLUMN IF NOT EXISTS "steps_done" jsonb;--> statement-breakpoint
-- The batch commit's function (migration 0015) with the write's "steps_done" merged in. The single-run
-- statements of src/persistence/commits.ts never carry one: a write that moves counts goes through here.
CREATE OR REPLACE FUNCTION "rmapp_commit_runs"(writes jsonb)
RETURNS TABLE (o_idx int, o_id text, o_version int, o_history_rows int, o_updated_at timestamptz, o_wake_now boolean)
LANGUAGE plpgsql VOLATILE AS $$
DECLARE
  w record;
BEGIN
  FOR w IN
    SELECT * FROM jsonb_to_recordset(writes) AS t(idx int, id text, expected int, owner text, epoch int, status text,
      snapshot jsonb, state_value jsonb, output jsonb, error jsonb, timers jsonb, steps jsonb, wake_at timestamptz,
      release boolean, final boolean, status_message text, seen_signal_seq int, history text,
      steps_done jsonb)
    ORDER BY t.id, t.idx
  LOOP
    UPDATE "rmapp_runs" r SET
      "status" = w.status, "snapshot" = w.snapshot, "state_value" = w.state_value, "output" = w.output, "error" = w.error,
      "timers" = w.timers, "steps" = w.steps,
      -- Merged only by a write that moves counts out of "steps"; otherwise the stored value (out of line
      -- once large) is kept as it is, not read.
      "steps_done" = CASE WHEN w.steps_done IS NULL THEN r."steps_done" ELSE coalesce(r."steps_done", '{}'::jsonb) || w.steps_done END,
      "version" = r."version" + 1, "status_message" = w.status_message,
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
