ALTER TABLE "rmapp_runs" ADD COLUMN "concurrency_key" text;--> statement-breakpoint
ALTER TABLE "rmapp_runs" ADD COLUMN "concurrency_limit" integer;--> statement-breakpoint
ALTER TABLE "rmapp_runs" ADD COLUMN "admitted" boolean DEFAULT false NOT NULL;--> statement-breakpoint
CREATE INDEX "rmapp_runs_queue_idx" ON "rmapp_runs" USING btree ("concurrency_key","created_at") WHERE concurrency_key is not null and status = 'pending' and not admitted;--> statement-breakpoint
CREATE INDEX "rmapp_runs_slots_idx" ON "rmapp_runs" USING btree ("concurrency_key") WHERE concurrency_key is not null and admitted and status in ('pending', 'running', 'waiting');