CREATE TABLE `metrics` (
	`id` integer PRIMARY KEY AUTOINCREMENT NOT NULL,
	`name` text NOT NULL,
	`value` real NOT NULL,
	`recorded_at` integer NOT NULL,
	`labels` text,
	`event_id` text
);
--> statement-breakpoint
CREATE UNIQUE INDEX `metrics_event_id_unique` ON `metrics` (`event_id`);--> statement-breakpoint
CREATE INDEX `metrics_name_recorded_at_idx` ON `metrics` (`name`,`recorded_at`);