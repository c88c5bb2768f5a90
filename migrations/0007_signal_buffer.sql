ALTER TABLE "rmapp_run_inbox" ADD COLUMN "keep_until" timestamp with time zone;--> statement-breakpoint
ALTER TABLE "rmapp_run_inbox" ADD COLUMN "outcome" text;