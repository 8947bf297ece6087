CREATE TABLE "metrics" (
	"id" bigint PRIMARY KEY GENERATED ALWAYS AS IDENTITY (sequence name "metrics_id_seq" INCREMENT BY 1 MINVALUE 1 MAXVALUE 9223372036854775807 START WITH 1 CACHE 1),
	"name" text NOT NULL,
	"value" double precision NOT NULL,
	"recorded_at" timestamp (3) with time zone NOT NULL,
	"labels" jsonb,
	"event_id" text,
	CONSTRAINT "metrics_event_id_unique" UNIQUE("event_id")
);
--> statement-breakpoint
CREATE INDEX "metrics_name_recorded_at_idx" ON "metrics" USING btree ("name","recorded_at");