-- The schema hub 0.1 (hand-written schema version 5) creates on SQLite: Store.open() on an empty file at
-- commit 525b2b1, every built-in plugin and connector loaded, dumped from sqlite_master. Frozen: never edit.
CREATE TABLE api_keys (
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	key_hash VARCHAR NOT NULL, 
	scopes JSON, 
	created_at FLOAT NOT NULL, 
	last_used_at FLOAT, 
	revoked_at FLOAT, 
	PRIMARY KEY (id)
);
CREATE TABLE approval_audit (
	id INTEGER NOT NULL, 
	gate_id VARCHAR, 
	at FLOAT NOT NULL, 
	channel VARCHAR NOT NULL, 
	actor VARCHAR, 
	action VARCHAR NOT NULL, 
	outcome VARCHAR NOT NULL, 
	reason VARCHAR, 
	detail JSON, 
	PRIMARY KEY (id)
);
CREATE TABLE approval_gates (
	id VARCHAR NOT NULL, 
	execution_id VARCHAR NOT NULL, 
	path VARCHAR NOT NULL, 
	namespace VARCHAR NOT NULL, 
	flow_id VARCHAR NOT NULL, 
	task_id VARCHAR NOT NULL, 
	state VARCHAR NOT NULL, 
	version INTEGER NOT NULL, 
	title VARCHAR NOT NULL, 
	message TEXT NOT NULL, 
	form JSON, 
	approvers JSON, 
	escalation_approvers JSON, 
	started_by JSON, 
	channels JSON, 
	escalation_channels JSON, 
	required INTEGER NOT NULL, 
	allow_self_approval BOOLEAN NOT NULL, 
	created_at FLOAT NOT NULL, 
	deadline FLOAT, 
	on_timeout VARCHAR NOT NULL, 
	remind_every FLOAT, 
	escalate_after FLOAT, 
	link_expires_at FLOAT, 
	reminders_sent INTEGER NOT NULL, 
	last_reminded_at FLOAT, 
	escalated_at FLOAT, 
	notified_at FLOAT, 
	decision VARCHAR, 
	decided_at FLOAT, 
	decided_by JSON, 
	comment TEXT, 
	form_values JSON, 
	PRIMARY KEY (id), 
	UNIQUE (execution_id, path)
);
CREATE TABLE approval_links (
	id VARCHAR NOT NULL, 
	gate_id VARCHAR NOT NULL, 
	identity VARCHAR NOT NULL, 
	channel VARCHAR NOT NULL, 
	created_at FLOAT NOT NULL, 
	expires_at FLOAT NOT NULL, 
	used_at FLOAT, 
	PRIMARY KEY (id)
);
CREATE TABLE approval_messages (
	id INTEGER NOT NULL, 
	gate_id VARCHAR NOT NULL, 
	kind VARCHAR NOT NULL, 
	purpose VARCHAR NOT NULL, 
	target VARCHAR NOT NULL, 
	channel_id VARCHAR, 
	ts VARCHAR, 
	email_id VARCHAR, 
	sent_at FLOAT NOT NULL, 
	error TEXT, 
	PRIMARY KEY (id), 
	UNIQUE (gate_id, purpose, target)
);
CREATE TABLE approval_votes (
	id INTEGER NOT NULL, 
	gate_id VARCHAR NOT NULL, 
	voter VARCHAR NOT NULL, 
	identity VARCHAR NOT NULL, 
	channel VARCHAR NOT NULL, 
	vote VARCHAR NOT NULL, 
	comment TEXT, 
	form JSON, 
	at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (gate_id, voter)
);
CREATE TABLE blobs (
	id VARCHAR NOT NULL, 
	execution_id VARCHAR, 
	content_type VARCHAR NOT NULL, 
	size INTEGER NOT NULL, 
	data BLOB NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE bus_publishes (
	idempotency_key VARCHAR NOT NULL, 
	execution_id VARCHAR NOT NULL, 
	bus VARCHAR NOT NULL, 
	destination VARCHAR NOT NULL, 
	ack JSON, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (idempotency_key)
);
CREATE TABLE email_messages (
	id VARCHAR NOT NULL, 
	idempotency_key VARCHAR NOT NULL, 
	execution_id VARCHAR, 
	namespace VARCHAR, 
	flow_id VARCHAR, 
	task_path VARCHAR, 
	backend VARCHAR NOT NULL, 
	status VARCHAR NOT NULL, 
	from_address VARCHAR NOT NULL, 
	recipients JSON, 
	subject VARCHAR NOT NULL, 
	message JSON, 
	message_id VARCHAR NOT NULL, 
	provider_id VARCHAR, 
	result JSON, 
	error JSON, 
	delivery JSON, 
	events JSON, 
	attempts INTEGER NOT NULL, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	sent_at FLOAT, 
	PRIMARY KEY (id), 
	UNIQUE (idempotency_key)
);
CREATE TABLE eval_promotions (
	id INTEGER NOT NULL, 
	prompt_name VARCHAR NOT NULL, 
	label VARCHAR NOT NULL, 
	version INTEGER NOT NULL, 
	previous INTEGER, 
	run_id VARCHAR NOT NULL, 
	eval_file VARCHAR, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE eval_results (
	id INTEGER NOT NULL, 
	run_id VARCHAR NOT NULL, 
	variant VARCHAR NOT NULL, 
	prompt_name VARCHAR, 
	prompt_version INTEGER, 
	prompt_hash VARCHAR, 
	model VARCHAR, 
	case_id VARCHAR NOT NULL, 
	case_index INTEGER NOT NULL, 
	repeat INTEGER NOT NULL, 
	tags JSON, 
	input JSON, 
	expected JSON, 
	output JSON, 
	text TEXT, 
	error JSON, 
	passed BOOLEAN NOT NULL, 
	score FLOAT NOT NULL, 
	assertions JSON, 
	latency_ms FLOAT NOT NULL, 
	input_tokens INTEGER NOT NULL, 
	output_tokens INTEGER NOT NULL, 
	cost FLOAT NOT NULL, 
	judge_cost FLOAT NOT NULL, 
	spent FLOAT NOT NULL, 
	cached BOOLEAN NOT NULL, 
	call_ids JSON, 
	execution_id VARCHAR, 
	trace_id VARCHAR, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE eval_runs (
	id VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	file VARCHAR, 
	status VARCHAR NOT NULL, 
	passed BOOLEAN, 
	target JSON, 
	variants JSON, 
	spec JSON, 
	summary JSON, 
	baseline_id VARCHAR, 
	error TEXT, 
	created_at FLOAT NOT NULL, 
	finished_at FLOAT, 
	PRIMARY KEY (id)
);
CREATE TABLE execution_labels (
	execution_id VARCHAR NOT NULL, 
	"key" VARCHAR NOT NULL, 
	value TEXT NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (execution_id, "key")
);
CREATE TABLE executions (
	id VARCHAR NOT NULL, 
	namespace VARCHAR NOT NULL, 
	flow_id VARCHAR NOT NULL, 
	revision INTEGER NOT NULL, 
	state VARCHAR NOT NULL, 
	inputs JSON, 
	outputs JSON, 
	error JSON, 
	labels JSON, 
	"trigger" JSON, 
	parent_id VARCHAR, 
	parent_path VARCHAR, 
	restarted_from VARCHAR, 
	owner VARCHAR, 
	heartbeat_at FLOAT, 
	created_at FLOAT NOT NULL, 
	started_at FLOAT, 
	ended_at FLOAT, 
	updated_at FLOAT NOT NULL, 
	trace_id VARCHAR, 
	span_id VARCHAR, 
	resume_at FLOAT, 
	PRIMARY KEY (id)
);
CREATE TABLE flow_revisions (
	id INTEGER NOT NULL, 
	namespace VARCHAR NOT NULL, 
	flow_id VARCHAR NOT NULL, 
	revision INTEGER NOT NULL, 
	content_hash VARCHAR NOT NULL, 
	source TEXT NOT NULL, 
	disabled BOOLEAN NOT NULL, 
	deleted BOOLEAN NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (namespace, flow_id, revision)
);
CREATE TABLE idempotency_keys (
	id INTEGER NOT NULL, 
	scope VARCHAR NOT NULL, 
	"key" VARCHAR NOT NULL, 
	body_hash VARCHAR NOT NULL, 
	execution_id VARCHAR NOT NULL, 
	created_at FLOAT NOT NULL, 
	response JSON, 
	PRIMARY KEY (id), 
	UNIQUE (scope, "key")
);
CREATE TABLE llm_cache (
	"key" VARCHAR NOT NULL, 
	model VARCHAR NOT NULL, 
	response JSON, 
	created_at FLOAT NOT NULL, 
	expires_at FLOAT NOT NULL, 
	PRIMARY KEY ("key")
);
CREATE TABLE llm_calls (
	id INTEGER NOT NULL, 
	execution_id VARCHAR, 
	path VARCHAR, 
	task_id VARCHAR, 
	attempt INTEGER NOT NULL, 
	round INTEGER NOT NULL, 
	status VARCHAR NOT NULL, 
	prompt_name VARCHAR, 
	prompt_version INTEGER, 
	prompt_hash VARCHAR, 
	model_requested VARCHAR, 
	model VARCHAR, 
	litellm_model VARCHAR, 
	provider VARCHAR, 
	fallback_used BOOLEAN NOT NULL, 
	retries INTEGER NOT NULL, 
	input_tokens INTEGER NOT NULL, 
	output_tokens INTEGER NOT NULL, 
	cost FLOAT NOT NULL, 
	latency_ms FLOAT NOT NULL, 
	cached BOOLEAN NOT NULL, 
	request JSON, 
	response TEXT, 
	errors JSON, 
	trace_id VARCHAR, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE logs (
	id INTEGER NOT NULL, 
	execution_id VARCHAR NOT NULL, 
	path VARCHAR, 
	level VARCHAR NOT NULL, 
	message TEXT NOT NULL, 
	ts FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE online_evals (
	id INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	prompt_name VARCHAR NOT NULL, 
	label VARCHAR NOT NULL, 
	sample_rate FLOAT NOT NULL, 
	window INTEGER NOT NULL, 
	alert_below FLOAT, 
	min_samples INTEGER NOT NULL, 
	alert_flow VARCHAR, 
	spec JSON, 
	file VARCHAR, 
	enabled BOOLEAN NOT NULL, 
	alerting BOOLEAN NOT NULL, 
	alerted_at FLOAT, 
	created_at FLOAT NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name)
);
CREATE TABLE online_scores (
	id INTEGER NOT NULL, 
	eval_name VARCHAR NOT NULL, 
	call_id INTEGER, 
	execution_id VARCHAR, 
	path VARCHAR, 
	trace_id VARCHAR, 
	prompt_name VARCHAR NOT NULL, 
	prompt_version INTEGER, 
	model VARCHAR, 
	passed BOOLEAN NOT NULL, 
	score FLOAT NOT NULL, 
	assertions JSON, 
	error JSON, 
	cost FLOAT NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE prompt_label_moves (
	id INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	label VARCHAR NOT NULL, 
	version INTEGER NOT NULL, 
	previous INTEGER, 
	moved_at FLOAT NOT NULL, 
	actor VARCHAR, 
	reason TEXT, 
	eval_run VARCHAR, 
	forced BOOLEAN NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE prompt_labels (
	id INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	label VARCHAR NOT NULL, 
	version INTEGER NOT NULL, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name, label)
);
CREATE TABLE prompt_pins (
	id INTEGER NOT NULL, 
	execution_id VARCHAR NOT NULL, 
	path VARCHAR NOT NULL, 
	reference VARCHAR NOT NULL, 
	name VARCHAR NOT NULL, 
	version INTEGER NOT NULL, 
	content_hash VARCHAR NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (execution_id, path)
);
CREATE TABLE prompt_versions (
	id INTEGER NOT NULL, 
	name VARCHAR NOT NULL, 
	version INTEGER NOT NULL, 
	content_hash VARCHAR NOT NULL, 
	spec JSON, 
	source TEXT NOT NULL, 
	message VARCHAR, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (id), 
	UNIQUE (name, version)
);
CREATE TABLE schema_version (
	id INTEGER NOT NULL, 
	version INTEGER NOT NULL, 
	PRIMARY KEY (id)
);
CREATE TABLE slack_posts (
	idempotency_key VARCHAR NOT NULL, 
	execution_id VARCHAR NOT NULL, 
	channel VARCHAR NOT NULL, 
	ts VARCHAR NOT NULL, 
	created_at FLOAT NOT NULL, 
	PRIMARY KEY (idempotency_key)
);
CREATE TABLE spans (
	id INTEGER NOT NULL, 
	trace_id VARCHAR(32) NOT NULL, 
	span_id VARCHAR(16) NOT NULL, 
	parent_span_id VARCHAR(16), 
	name TEXT NOT NULL, 
	kind VARCHAR NOT NULL, 
	service VARCHAR, 
	execution_id VARCHAR, 
	start_time FLOAT NOT NULL, 
	end_time FLOAT NOT NULL, 
	duration_ms FLOAT NOT NULL, 
	status VARCHAR NOT NULL, 
	status_message TEXT, 
	attributes JSON, 
	events JSON, 
	links JSON, 
	PRIMARY KEY (id)
);
CREATE TABLE step_runs (
	id INTEGER NOT NULL, 
	execution_id VARCHAR NOT NULL, 
	path VARCHAR NOT NULL, 
	task_id VARCHAR NOT NULL, 
	task_type VARCHAR NOT NULL, 
	attempt INTEGER NOT NULL, 
	state VARCHAR NOT NULL, 
	params JSON, 
	output JSON, 
	output_ref VARCHAR, 
	error JSON, 
	data JSON, 
	started_at FLOAT NOT NULL, 
	ended_at FLOAT, 
	trace_id VARCHAR, 
	span_id VARCHAR, 
	PRIMARY KEY (id)
);
CREATE TABLE trigger_states (
	namespace VARCHAR NOT NULL, 
	flow_id VARCHAR NOT NULL, 
	trigger_id VARCHAR NOT NULL, 
	type VARCHAR NOT NULL, 
	disabled BOOLEAN NOT NULL, 
	last_fire_at FLOAT, 
	next_fire_at FLOAT, 
	last_execution_id VARCHAR, 
	fire_count INTEGER NOT NULL, 
	last_error TEXT, 
	error_at FLOAT, 
	cursor JSON, 
	updated_at FLOAT NOT NULL, 
	PRIMARY KEY (namespace, flow_id, trigger_id)
);
CREATE INDEX ix_approval_audit_at ON approval_audit (at);
CREATE INDEX ix_approval_audit_gate_id ON approval_audit (gate_id);
CREATE INDEX ix_approval_gates_execution_id ON approval_gates (execution_id);
CREATE INDEX ix_approval_gates_state ON approval_gates (state);
CREATE INDEX ix_approval_links_gate_id ON approval_links (gate_id);
CREATE INDEX ix_approval_messages_gate_id ON approval_messages (gate_id);
CREATE INDEX ix_approval_votes_gate_id ON approval_votes (gate_id);
CREATE INDEX ix_blobs_execution_id ON blobs (execution_id);
CREATE INDEX ix_bus_publishes_execution_id ON bus_publishes (execution_id);
CREATE INDEX ix_email_messages_created_at ON email_messages (created_at);
CREATE INDEX ix_email_messages_execution_id ON email_messages (execution_id);
CREATE INDEX ix_email_messages_provider_id ON email_messages (provider_id);
CREATE INDEX ix_email_messages_status ON email_messages (status);
CREATE INDEX ix_eval_promotions_prompt_name ON eval_promotions (prompt_name);
CREATE INDEX ix_eval_results_run ON eval_results (run_id, variant);
CREATE INDEX ix_eval_runs_name ON eval_runs (name);
CREATE INDEX ix_execution_labels_value ON execution_labels ("key", value, created_at, execution_id);
CREATE INDEX ix_executions_created ON executions (created_at, id);
CREATE INDEX ix_executions_flow_created ON executions (flow_id, namespace, created_at, id);
CREATE INDEX ix_executions_flow_state ON executions (namespace, flow_id, state);
CREATE INDEX ix_executions_namespace_created ON executions (namespace, created_at, id);
CREATE INDEX ix_executions_parent_id ON executions (parent_id);
CREATE INDEX ix_executions_state_created ON executions (state, created_at, id);
CREATE INDEX ix_executions_state_owner ON executions (state, owner);
CREATE INDEX ix_flow_revisions_flow_id ON flow_revisions (flow_id);
CREATE INDEX ix_flow_revisions_namespace ON flow_revisions (namespace);
CREATE INDEX ix_idempotency_keys_created_at ON idempotency_keys (created_at);
CREATE INDEX ix_llm_cache_expires_at ON llm_cache (expires_at);
CREATE INDEX ix_llm_calls_execution ON llm_calls (execution_id, path);
CREATE INDEX ix_logs_execution_id ON logs (execution_id);
CREATE INDEX ix_online_evals_prompt_name ON online_evals (prompt_name);
CREATE INDEX ix_online_scores_call_id ON online_scores (call_id);
CREATE INDEX ix_online_scores_eval ON online_scores (eval_name, id);
CREATE INDEX ix_online_scores_execution_id ON online_scores (execution_id);
CREATE INDEX ix_prompt_label_moves_name ON prompt_label_moves (name);
CREATE INDEX ix_prompt_labels_name ON prompt_labels (name);
CREATE INDEX ix_prompt_pins_execution_id ON prompt_pins (execution_id);
CREATE INDEX ix_prompt_versions_name ON prompt_versions (name);
CREATE INDEX ix_slack_posts_execution_id ON slack_posts (execution_id);
CREATE INDEX ix_spans_execution_id ON spans (execution_id);
CREATE INDEX ix_spans_start ON spans (start_time);
CREATE INDEX ix_spans_trace ON spans (trace_id, start_time);
CREATE INDEX ix_step_runs_execution_path ON step_runs (execution_id, path);
INSERT INTO schema_version (id, version) VALUES (1, 5);
