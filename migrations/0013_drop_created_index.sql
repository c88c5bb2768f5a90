-- The unfiltered list reads each status's range of rmapp_runs_status_idx, merged (src/persistence/runs.ts
-- listRuns): this index cost two entries per run in WAL and served only that list.
DROP INDEX "rmapp_runs_created_idx";
