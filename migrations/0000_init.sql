CREATE TABLE "rmapp_run_history" (
	"run_id" text NOT NULL,
	"id" bigserial NOT NULL,
	"worker" text,
	"lease_epoch" integer,
	"at" timestamp with time zone DEFAULT now() NOT NULL,
	"events" jsonb NOT NULL,
	CONSTRAINT "rmapp_run_history_pk" PRIMARY KEY("run_id","id")
);
--> statement-breakpoint
CREATE TABLE "rmapp_run_inbox" (
	"id" bigserial PRIMARY KEY NOT NULL,
	"run_id" text NOT NULL,
	"event" jsonb NOT NULL,
	"dedupe_key" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"consumed_at" timestamp with time zone
);
--> statement-breakpoint
CREATE TABLE "rmapp_runs" (
	"id" text PRIMARY KEY NOT NULL,
	"workflow" text NOT NULL,
	"workflow_version" text NOT NULL,
	"status" text DEFAULT 'pending' NOT NULL,
	"status_message" text,
	"snapshot" jsonb,
	"state_value" jsonb,
	"input" jsonb,
	"output" jsonb,
	"error" jsonb,
	"timers" jsonb DEFAULT '[]'::jsonb NOT NULL,
	"steps" jsonb DEFAULT '{}'::jsonb NOT NULL,
	"version" integer DEFAULT 0 NOT NULL,
	"lease_owner" text,
	"lease_expires_at" timestamp with time zone,
	"lease_epoch" integer DEFAULT 0 NOT NULL,
	"wake_at" timestamp with time zone,
	"deadline_at" timestamp with time zone,
	"parent_run_id" text,
	"idempotency_key" text,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	"updated_at" timestamp with time zone DEFAULT now() NOT NULL,
	"finished_at" timestamp with time zone,
	CONSTRAINT "rmapp_runs_status_ck" CHECK ("rmapp_runs"."status" in ('pending', 'running', 'waiting', 'succeeded', 'failed', 'cancelled'))
);
--> statement-breakpoint
CREATE UNIQUE INDEX "rmapp_run_inbox_dedupe_uq" ON "rmapp_run_inbox" USING btree ("run_id","dedupe_key");--> statement-breakpoint
CREATE INDEX "rmapp_run_inbox_pending_idx" ON "rmapp_run_inbox" USING btree ("run_id","id") WHERE consumed_at is null;--> statement-breakpoint
CREATE UNIQUE INDEX "rmapp_runs_idempotency_key_uq" ON "rmapp_runs" USING btree ("idempotency_key");--> statement-breakpoint
CREATE INDEX "rmapp_runs_status_idx" ON "rmapp_runs" USING btree ("status","created_at");--> statement-breakpoint
CREATE INDEX "rmapp_runs_runnable_idx" ON "rmapp_runs" USING btree ("wake_at") WHERE status in ('pending', 'running', 'waiting');--> statement-breakpoint
CREATE INDEX "rmapp_runs_parent_idx" ON "rmapp_runs" USING btree ("parent_run_id");