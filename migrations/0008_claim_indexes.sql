DROP INDEX "rmapp_runs_runnable_idx";--> statement-breakpoint
DROP INDEX "rmapp_runs_status_idx";--> statement-breakpoint
CREATE INDEX "rmapp_runs_created_idx" ON "rmapp_runs" USING btree ("created_at","id");--> statement-breakpoint
CREATE INDEX "rmapp_runs_due_pending_idx" ON "rmapp_runs" USING btree ("wake_at") WHERE status = 'pending';--> statement-breakpoint
CREATE INDEX "rmapp_runs_due_resumed_idx" ON "rmapp_runs" USING btree ("wake_at") WHERE status in ('running', 'waiting');--> statement-breakpoint
CREATE INDEX "rmapp_runs_status_idx" ON "rmapp_runs" USING btree ("status","created_at","id");