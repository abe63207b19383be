-- The schema hub 0.1 (hand-written schema version 5) creates on PostgreSQL: Store.open() on an empty schema at
-- commit 525b2b1, every built-in plugin and connector loaded, pg_dump --schema-only without the schema name.
-- Frozen: never edit.

CREATE TABLE api_keys (
    id character varying NOT NULL,
    name character varying NOT NULL,
    key_hash character varying NOT NULL,
    scopes json,
    created_at double precision NOT NULL,
    last_used_at double precision,
    revoked_at double precision
);

CREATE TABLE approval_audit (
    id integer NOT NULL,
    gate_id character varying,
    at double precision NOT NULL,
    channel character varying NOT NULL,
    actor character varying,
    action character varying NOT NULL,
    outcome character varying NOT NULL,
    reason character varying,
    detail json
);

CREATE SEQUENCE approval_audit_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE approval_audit_id_seq OWNED BY approval_audit.id;

CREATE TABLE approval_gates (
    id character varying NOT NULL,
    execution_id character varying NOT NULL,
    path character varying NOT NULL,
    namespace character varying NOT NULL,
    flow_id character varying NOT NULL,
    task_id character varying NOT NULL,
    state character varying NOT NULL,
    version integer NOT NULL,
    title character varying NOT NULL,
    message text NOT NULL,
    form json,
    approvers json,
    escalation_approvers json,
    started_by json,
    channels json,
    escalation_channels json,
    required integer NOT NULL,
    allow_self_approval boolean NOT NULL,
    created_at double precision NOT NULL,
    deadline double precision,
    on_timeout character varying NOT NULL,
    remind_every double precision,
    escalate_after double precision,
    link_expires_at double precision,
    reminders_sent integer NOT NULL,
    last_reminded_at double precision,
    escalated_at double precision,
    notified_at double precision,
    decision character varying,
    decided_at double precision,
    decided_by json,
    comment text,
    form_values json
);

CREATE TABLE approval_links (
    id character varying NOT NULL,
    gate_id character varying NOT NULL,
    identity character varying NOT NULL,
    channel character varying NOT NULL,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL,
    used_at double precision
);

CREATE TABLE approval_messages (
    id integer NOT NULL,
    gate_id character varying NOT NULL,
    kind character varying NOT NULL,
    purpose character varying NOT NULL,
    target character varying NOT NULL,
    channel_id character varying,
    ts character varying,
    email_id character varying,
    sent_at double precision NOT NULL,
    error text
);

CREATE SEQUENCE approval_messages_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE approval_messages_id_seq OWNED BY approval_messages.id;

CREATE TABLE approval_votes (
    id integer NOT NULL,
    gate_id character varying NOT NULL,
    voter character varying NOT NULL,
    identity character varying NOT NULL,
    channel character varying NOT NULL,
    vote character varying NOT NULL,
    comment text,
    form json,
    at double precision NOT NULL
);

CREATE SEQUENCE approval_votes_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE approval_votes_id_seq OWNED BY approval_votes.id;

CREATE TABLE blobs (
    id character varying NOT NULL,
    execution_id character varying,
    content_type character varying NOT NULL,
    size integer NOT NULL,
    data bytea NOT NULL,
    created_at double precision NOT NULL
);

CREATE TABLE bus_publishes (
    idempotency_key character varying NOT NULL,
    execution_id character varying NOT NULL,
    bus character varying NOT NULL,
    destination character varying NOT NULL,
    ack json,
    created_at double precision NOT NULL
);

CREATE TABLE email_messages (
    id character varying NOT NULL,
    idempotency_key character varying NOT NULL,
    execution_id character varying,
    namespace character varying,
    flow_id character varying,
    task_path character varying,
    backend character varying NOT NULL,
    status character varying NOT NULL,
    from_address character varying NOT NULL,
    recipients json,
    subject character varying NOT NULL,
    message json,
    message_id character varying NOT NULL,
    provider_id character varying,
    result json,
    error json,
    delivery json,
    events json,
    attempts integer NOT NULL,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL,
    sent_at double precision
);

CREATE TABLE eval_promotions (
    id integer NOT NULL,
    prompt_name character varying NOT NULL,
    label character varying NOT NULL,
    version integer NOT NULL,
    previous integer,
    run_id character varying NOT NULL,
    eval_file character varying,
    created_at double precision NOT NULL
);

CREATE SEQUENCE eval_promotions_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE eval_promotions_id_seq OWNED BY eval_promotions.id;

CREATE TABLE eval_results (
    id integer NOT NULL,
    run_id character varying NOT NULL,
    variant character varying NOT NULL,
    prompt_name character varying,
    prompt_version integer,
    prompt_hash character varying,
    model character varying,
    case_id character varying NOT NULL,
    case_index integer NOT NULL,
    repeat integer NOT NULL,
    tags json,
    input json,
    expected json,
    output json,
    text text,
    error json,
    passed boolean NOT NULL,
    score double precision NOT NULL,
    assertions json,
    latency_ms double precision NOT NULL,
    input_tokens integer NOT NULL,
    output_tokens integer NOT NULL,
    cost double precision NOT NULL,
    judge_cost double precision NOT NULL,
    spent double precision NOT NULL,
    cached boolean NOT NULL,
    call_ids json,
    execution_id character varying,
    trace_id character varying,
    created_at double precision NOT NULL
);

CREATE SEQUENCE eval_results_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE eval_results_id_seq OWNED BY eval_results.id;

CREATE TABLE eval_runs (
    id character varying NOT NULL,
    name character varying NOT NULL,
    file character varying,
    status character varying NOT NULL,
    passed boolean,
    target json,
    variants json,
    spec json,
    summary json,
    baseline_id character varying,
    error text,
    created_at double precision NOT NULL,
    finished_at double precision
);

CREATE TABLE execution_labels (
    execution_id character varying NOT NULL,
    key character varying NOT NULL,
    value text NOT NULL,
    created_at double precision NOT NULL
);

CREATE TABLE executions (
    id character varying NOT NULL,
    namespace character varying NOT NULL,
    flow_id character varying NOT NULL,
    revision integer NOT NULL,
    state character varying NOT NULL,
    inputs json,
    outputs json,
    error json,
    labels json,
    trigger json,
    parent_id character varying,
    parent_path character varying,
    restarted_from character varying,
    owner character varying,
    heartbeat_at double precision,
    created_at double precision NOT NULL,
    started_at double precision,
    ended_at double precision,
    updated_at double precision NOT NULL,
    trace_id character varying,
    span_id character varying,
    resume_at double precision
);

CREATE TABLE flow_revisions (
    id integer NOT NULL,
    namespace character varying NOT NULL,
    flow_id character varying NOT NULL,
    revision integer NOT NULL,
    content_hash character varying NOT NULL,
    source text NOT NULL,
    disabled boolean NOT NULL,
    deleted boolean NOT NULL,
    created_at double precision NOT NULL
);

CREATE SEQUENCE flow_revisions_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE flow_revisions_id_seq OWNED BY flow_revisions.id;

CREATE TABLE idempotency_keys (
    id integer NOT NULL,
    scope character varying NOT NULL,
    key character varying NOT NULL,
    body_hash character varying NOT NULL,
    execution_id character varying NOT NULL,
    created_at double precision NOT NULL,
    response json
);

CREATE SEQUENCE idempotency_keys_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE idempotency_keys_id_seq OWNED BY idempotency_keys.id;

CREATE TABLE llm_cache (
    key character varying NOT NULL,
    model character varying NOT NULL,
    response json,
    created_at double precision NOT NULL,
    expires_at double precision NOT NULL
);

CREATE TABLE llm_calls (
    id integer NOT NULL,
    execution_id character varying,
    path character varying,
    task_id character varying,
    attempt integer NOT NULL,
    round integer NOT NULL,
    status character varying NOT NULL,
    prompt_name character varying,
    prompt_version integer,
    prompt_hash character varying,
    model_requested character varying,
    model character varying,
    litellm_model character varying,
    provider character varying,
    fallback_used boolean NOT NULL,
    retries integer NOT NULL,
    input_tokens integer NOT NULL,
    output_tokens integer NOT NULL,
    cost double precision NOT NULL,
    latency_ms double precision NOT NULL,
    cached boolean NOT NULL,
    request json,
    response text,
    errors json,
    trace_id character varying,
    created_at double precision NOT NULL
);

CREATE SEQUENCE llm_calls_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE llm_calls_id_seq OWNED BY llm_calls.id;

CREATE TABLE logs (
    id integer NOT NULL,
    execution_id character varying NOT NULL,
    path character varying,
    level character varying NOT NULL,
    message text NOT NULL,
    ts double precision NOT NULL
);

CREATE SEQUENCE logs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE logs_id_seq OWNED BY logs.id;

CREATE TABLE online_evals (
    id integer NOT NULL,
    name character varying NOT NULL,
    prompt_name character varying NOT NULL,
    label character varying NOT NULL,
    sample_rate double precision NOT NULL,
    "window" integer NOT NULL,
    alert_below double precision,
    min_samples integer NOT NULL,
    alert_flow character varying,
    spec json,
    file character varying,
    enabled boolean NOT NULL,
    alerting boolean NOT NULL,
    alerted_at double precision,
    created_at double precision NOT NULL,
    updated_at double precision NOT NULL
);

CREATE SEQUENCE online_evals_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE online_evals_id_seq OWNED BY online_evals.id;

CREATE TABLE online_scores (
    id integer NOT NULL,
    eval_name character varying NOT NULL,
    call_id integer,
    execution_id character varying,
    path character varying,
    trace_id character varying,
    prompt_name character varying NOT NULL,
    prompt_version integer,
    model character varying,
    passed boolean NOT NULL,
    score double precision NOT NULL,
    assertions json,
    error json,
    cost double precision NOT NULL,
    created_at double precision NOT NULL
);

CREATE SEQUENCE online_scores_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE online_scores_id_seq OWNED BY online_scores.id;

CREATE TABLE prompt_label_moves (
    id integer NOT NULL,
    name character varying NOT NULL,
    label character varying NOT NULL,
    version integer NOT NULL,
    previous integer,
    moved_at double precision NOT NULL,
    actor character varying,
    reason text,
    eval_run character varying,
    forced boolean NOT NULL
);

CREATE SEQUENCE prompt_label_moves_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE prompt_label_moves_id_seq OWNED BY prompt_label_moves.id;

CREATE TABLE prompt_labels (
    id integer NOT NULL,
    name character varying NOT NULL,
    label character varying NOT NULL,
    version integer NOT NULL,
    updated_at double precision NOT NULL
);

CREATE SEQUENCE prompt_labels_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE prompt_labels_id_seq OWNED BY prompt_labels.id;

CREATE TABLE prompt_pins (
    id integer NOT NULL,
    execution_id character varying NOT NULL,
    path character varying NOT NULL,
    reference character varying NOT NULL,
    name character varying NOT NULL,
    version integer NOT NULL,
    content_hash character varying NOT NULL,
    created_at double precision NOT NULL
);

CREATE SEQUENCE prompt_pins_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE prompt_pins_id_seq OWNED BY prompt_pins.id;

CREATE TABLE prompt_versions (
    id integer NOT NULL,
    name character varying NOT NULL,
    version integer NOT NULL,
    content_hash character varying NOT NULL,
    spec json,
    source text NOT NULL,
    message character varying,
    created_at double precision NOT NULL
);

CREATE SEQUENCE prompt_versions_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE prompt_versions_id_seq OWNED BY prompt_versions.id;

CREATE TABLE schema_version (
    id integer NOT NULL,
    version integer NOT NULL
);

CREATE TABLE slack_posts (
    idempotency_key character varying NOT NULL,
    execution_id character varying NOT NULL,
    channel character varying NOT NULL,
    ts character varying NOT NULL,
    created_at double precision NOT NULL
);

CREATE TABLE spans (
    id integer NOT NULL,
    trace_id character varying(32) NOT NULL,
    span_id character varying(16) NOT NULL,
    parent_span_id character varying(16),
    name text NOT NULL,
    kind character varying NOT NULL,
    service character varying,
    execution_id character varying,
    start_time double precision NOT NULL,
    end_time double precision NOT NULL,
    duration_ms double precision NOT NULL,
    status character varying NOT NULL,
    status_message text,
    attributes json,
    events json,
    links json
);

CREATE SEQUENCE spans_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE spans_id_seq OWNED BY spans.id;

CREATE TABLE step_runs (
    id integer NOT NULL,
    execution_id character varying NOT NULL,
    path character varying NOT NULL,
    task_id character varying NOT NULL,
    task_type character varying NOT NULL,
    attempt integer NOT NULL,
    state character varying NOT NULL,
    params json,
    output json,
    output_ref character varying,
    error json,
    data json,
    started_at double precision NOT NULL,
    ended_at double precision,
    trace_id character varying,
    span_id character varying
);

CREATE SEQUENCE step_runs_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;

ALTER SEQUENCE step_runs_id_seq OWNED BY step_runs.id;

CREATE TABLE trigger_states (
    namespace character varying NOT NULL,
    flow_id character varying NOT NULL,
    trigger_id character varying NOT NULL,
    type character varying NOT NULL,
    disabled boolean NOT NULL,
    last_fire_at double precision,
    next_fire_at double precision,
    last_execution_id character varying,
    fire_count integer NOT NULL,
    last_error text,
    error_at double precision,
    cursor json,
    updated_at double precision NOT NULL
);

ALTER TABLE ONLY approval_audit ALTER COLUMN id SET DEFAULT nextval('approval_audit_id_seq'::regclass);

ALTER TABLE ONLY approval_messages ALTER COLUMN id SET DEFAULT nextval('approval_messages_id_seq'::regclass);

ALTER TABLE ONLY approval_votes ALTER COLUMN id SET DEFAULT nextval('approval_votes_id_seq'::regclass);

ALTER TABLE ONLY eval_promotions ALTER COLUMN id SET DEFAULT nextval('eval_promotions_id_seq'::regclass);

ALTER TABLE ONLY eval_results ALTER COLUMN id SET DEFAULT nextval('eval_results_id_seq'::regclass);

ALTER TABLE ONLY flow_revisions ALTER COLUMN id SET DEFAULT nextval('flow_revisions_id_seq'::regclass);

ALTER TABLE ONLY idempotency_keys ALTER COLUMN id SET DEFAULT nextval('idempotency_keys_id_seq'::regclass);

ALTER TABLE ONLY llm_calls ALTER COLUMN id SET DEFAULT nextval('llm_calls_id_seq'::regclass);

ALTER TABLE ONLY logs ALTER COLUMN id SET DEFAULT nextval('logs_id_seq'::regclass);

ALTER TABLE ONLY online_evals ALTER COLUMN id SET DEFAULT nextval('online_evals_id_seq'::regclass);

ALTER TABLE ONLY online_scores ALTER COLUMN id SET DEFAULT nextval('online_scores_id_seq'::regclass);

ALTER TABLE ONLY prompt_label_moves ALTER COLUMN id SET DEFAULT nextval('prompt_label_moves_id_seq'::regclass);

ALTER TABLE ONLY prompt_labels ALTER COLUMN id SET DEFAULT nextval('prompt_labels_id_seq'::regclass);

ALTER TABLE ONLY prompt_pins ALTER COLUMN id SET DEFAULT nextval('prompt_pins_id_seq'::regclass);

ALTER TABLE ONLY prompt_versions ALTER COLUMN id SET DEFAULT nextval('prompt_versions_id_seq'::regclass);

ALTER TABLE ONLY spans ALTER COLUMN id SET DEFAULT nextval('spans_id_seq'::regclass);

ALTER TABLE ONLY step_runs ALTER COLUMN id SET DEFAULT nextval('step_runs_id_seq'::regclass);

ALTER TABLE ONLY api_keys
    ADD CONSTRAINT api_keys_pkey PRIMARY KEY (id);

ALTER TABLE ONLY approval_audit
    ADD CONSTRAINT approval_audit_pkey PRIMARY KEY (id);

ALTER TABLE ONLY approval_gates
    ADD CONSTRAINT approval_gates_execution_id_path_key UNIQUE (execution_id, path);

ALTER TABLE ONLY approval_gates
    ADD CONSTRAINT approval_gates_pkey PRIMARY KEY (id);

ALTER TABLE ONLY approval_links
    ADD CONSTRAINT approval_links_pkey PRIMARY KEY (id);

ALTER TABLE ONLY approval_messages
    ADD CONSTRAINT approval_messages_gate_id_purpose_target_key UNIQUE (gate_id, purpose, target);

ALTER TABLE ONLY approval_messages
    ADD CONSTRAINT approval_messages_pkey PRIMARY KEY (id);

ALTER TABLE ONLY approval_votes
    ADD CONSTRAINT approval_votes_gate_id_voter_key UNIQUE (gate_id, voter);

ALTER TABLE ONLY approval_votes
    ADD CONSTRAINT approval_votes_pkey PRIMARY KEY (id);

ALTER TABLE ONLY blobs
    ADD CONSTRAINT blobs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY bus_publishes
    ADD CONSTRAINT bus_publishes_pkey PRIMARY KEY (idempotency_key);

ALTER TABLE ONLY email_messages
    ADD CONSTRAINT email_messages_idempotency_key_key UNIQUE (idempotency_key);

ALTER TABLE ONLY email_messages
    ADD CONSTRAINT email_messages_pkey PRIMARY KEY (id);

ALTER TABLE ONLY eval_promotions
    ADD CONSTRAINT eval_promotions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY eval_results
    ADD CONSTRAINT eval_results_pkey PRIMARY KEY (id);

ALTER TABLE ONLY eval_runs
    ADD CONSTRAINT eval_runs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY execution_labels
    ADD CONSTRAINT execution_labels_pkey PRIMARY KEY (execution_id, key);

ALTER TABLE ONLY executions
    ADD CONSTRAINT executions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY flow_revisions
    ADD CONSTRAINT flow_revisions_namespace_flow_id_revision_key UNIQUE (namespace, flow_id, revision);

ALTER TABLE ONLY flow_revisions
    ADD CONSTRAINT flow_revisions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY idempotency_keys
    ADD CONSTRAINT idempotency_keys_pkey PRIMARY KEY (id);

ALTER TABLE ONLY idempotency_keys
    ADD CONSTRAINT idempotency_keys_scope_key_key UNIQUE (scope, key);

ALTER TABLE ONLY llm_cache
    ADD CONSTRAINT llm_cache_pkey PRIMARY KEY (key);

ALTER TABLE ONLY llm_calls
    ADD CONSTRAINT llm_calls_pkey PRIMARY KEY (id);

ALTER TABLE ONLY logs
    ADD CONSTRAINT logs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY online_evals
    ADD CONSTRAINT online_evals_name_key UNIQUE (name);

ALTER TABLE ONLY online_evals
    ADD CONSTRAINT online_evals_pkey PRIMARY KEY (id);

ALTER TABLE ONLY online_scores
    ADD CONSTRAINT online_scores_pkey PRIMARY KEY (id);

ALTER TABLE ONLY prompt_label_moves
    ADD CONSTRAINT prompt_label_moves_pkey PRIMARY KEY (id);

ALTER TABLE ONLY prompt_labels
    ADD CONSTRAINT prompt_labels_name_label_key UNIQUE (name, label);

ALTER TABLE ONLY prompt_labels
    ADD CONSTRAINT prompt_labels_pkey PRIMARY KEY (id);

ALTER TABLE ONLY prompt_pins
    ADD CONSTRAINT prompt_pins_execution_id_path_key UNIQUE (execution_id, path);

ALTER TABLE ONLY prompt_pins
    ADD CONSTRAINT prompt_pins_pkey PRIMARY KEY (id);

ALTER TABLE ONLY prompt_versions
    ADD CONSTRAINT prompt_versions_name_version_key UNIQUE (name, version);

ALTER TABLE ONLY prompt_versions
    ADD CONSTRAINT prompt_versions_pkey PRIMARY KEY (id);

ALTER TABLE ONLY schema_version
    ADD CONSTRAINT schema_version_pkey PRIMARY KEY (id);

ALTER TABLE ONLY slack_posts
    ADD CONSTRAINT slack_posts_pkey PRIMARY KEY (idempotency_key);

ALTER TABLE ONLY spans
    ADD CONSTRAINT spans_pkey PRIMARY KEY (id);

ALTER TABLE ONLY step_runs
    ADD CONSTRAINT step_runs_pkey PRIMARY KEY (id);

ALTER TABLE ONLY trigger_states
    ADD CONSTRAINT trigger_states_pkey PRIMARY KEY (namespace, flow_id, trigger_id);

CREATE INDEX ix_approval_audit_at ON approval_audit USING btree (at);

CREATE INDEX ix_approval_audit_gate_id ON approval_audit USING btree (gate_id);

CREATE INDEX ix_approval_gates_execution_id ON approval_gates USING btree (execution_id);

CREATE INDEX ix_approval_gates_state ON approval_gates USING btree (state);

CREATE INDEX ix_approval_links_gate_id ON approval_links USING btree (gate_id);

CREATE INDEX ix_approval_messages_gate_id ON approval_messages USING btree (gate_id);

CREATE INDEX ix_approval_votes_gate_id ON approval_votes USING btree (gate_id);

CREATE INDEX ix_blobs_execution_id ON blobs USING btree (execution_id);

CREATE INDEX ix_bus_publishes_execution_id ON bus_publishes USING btree (execution_id);

CREATE INDEX ix_email_messages_created_at ON email_messages USING btree (created_at);

CREATE INDEX ix_email_messages_execution_id ON email_messages USING btree (execution_id);

CREATE INDEX ix_email_messages_provider_id ON email_messages USING btree (provider_id);

CREATE INDEX ix_email_messages_status ON email_messages USING btree (status);

CREATE INDEX ix_eval_promotions_prompt_name ON eval_promotions USING btree (prompt_name);

CREATE INDEX ix_eval_results_run ON eval_results USING btree (run_id, variant);

CREATE INDEX ix_eval_runs_name ON eval_runs USING btree (name);

CREATE INDEX ix_execution_labels_value ON execution_labels USING btree (key, value, created_at, execution_id);

CREATE INDEX ix_executions_created ON executions USING btree (created_at, id);

CREATE INDEX ix_executions_flow_created ON executions USING btree (flow_id, namespace, created_at, id);

CREATE INDEX ix_executions_flow_state ON executions USING btree (namespace, flow_id, state);

CREATE INDEX ix_executions_namespace_created ON executions USING btree (namespace, created_at, id);

CREATE INDEX ix_executions_parent_id ON executions USING btree (parent_id);

CREATE INDEX ix_executions_state_created ON executions USING btree (state, created_at, id);

CREATE INDEX ix_executions_state_owner ON executions USING btree (state, owner);

CREATE INDEX ix_flow_revisions_flow_id ON flow_revisions USING btree (flow_id);

CREATE INDEX ix_flow_revisions_namespace ON flow_revisions USING btree (namespace);

CREATE INDEX ix_idempotency_keys_created_at ON idempotency_keys USING btree (created_at);

CREATE INDEX ix_llm_cache_expires_at ON llm_cache USING btree (expires_at);

CREATE INDEX ix_llm_calls_execution ON llm_calls USING btree (execution_id, path);

CREATE INDEX ix_logs_execution_id ON logs USING btree (execution_id);

CREATE INDEX ix_online_evals_prompt_name ON online_evals USING btree (prompt_name);

CREATE INDEX ix_online_scores_call_id ON online_scores USING btree (call_id);

CREATE INDEX ix_online_scores_eval ON online_scores USING btree (eval_name, id);

CREATE INDEX ix_online_scores_execution_id ON online_scores USING btree (execution_id);

CREATE INDEX ix_prompt_label_moves_name ON prompt_label_moves USING btree (name);

CREATE INDEX ix_prompt_labels_name ON prompt_labels USING btree (name);

CREATE INDEX ix_prompt_pins_execution_id ON prompt_pins USING btree (execution_id);

CREATE INDEX ix_prompt_versions_name ON prompt_versions USING btree (name);

CREATE INDEX ix_slack_posts_execution_id ON slack_posts USING btree (execution_id);

CREATE INDEX ix_spans_execution_id ON spans USING btree (execution_id);

CREATE INDEX ix_spans_start ON spans USING btree (start_time);

CREATE INDEX ix_spans_trace ON spans USING btree (trace_id, start_time);

CREATE INDEX ix_step_runs_execution_path ON step_runs USING btree (execution_id, path);

INSERT INTO schema_version (id, version) VALUES (1, 5);
