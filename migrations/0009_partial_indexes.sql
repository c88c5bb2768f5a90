DROP INDEX "rmapp_runs_idempotency_key_uq";--> statement-breakpoint
DROP INDEX "rmapp_runs_parent_idx";--> statement-breakpoint
CREATE UNIQUE INDEX "rmapp_runs_idempotency_key_uq" ON "rmapp_runs" USING btree ("idempotency_key") WHERE idempotency_key is not null;--> statement-breakpoint
CREATE INDEX "rmapp_runs_parent_idx" ON "rmapp_runs" USING btree ("parent_run_id") WHERE parent_run_id is not null;