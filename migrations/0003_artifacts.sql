CREATE TABLE "rmapp_run_artifacts" (
	"run_id" text NOT NULL,
	"name" text NOT NULL,
	"value" jsonb NOT NULL,
	"bytes" integer NOT NULL,
	"created_at" timestamp with time zone DEFAULT now() NOT NULL,
	CONSTRAINT "rmapp_run_artifacts_pk" PRIMARY KEY("run_id","name")
);
