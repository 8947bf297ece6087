CREATE TABLE `metrics_mailbox_receipts` (
	`posted_at` integer NOT NULL,
	`nonce` integer NOT NULL,
	`first_id` integer NOT NULL,
	PRIMARY KEY(`posted_at`, `nonce`)
);
