-- Runs cancelled while queued whose definition's cleanup is still owed (src/persistence/run-admin.ts
-- CLEANUP_OWED): every worker looks for them every lease (run-admin.ts owedCleanupRuns) and runs the
-- cleanup itself. Partial: only those few runs are in it (a cancelled run keeps no other status message).
CREATE INDEX "rmapp_runs_cleanup_owed_idx" ON "rmapp_runs" USING btree ("id") WHERE status = 'cancelled' and status_message is not null;
