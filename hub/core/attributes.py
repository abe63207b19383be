"""Every span and metric name the hub emits, in one place.

The ``gen_ai.*`` names follow the OpenTelemetry GenAI semantic conventions; the ``hub.*`` names
are the hub's own. Dashboards and the trace viewer read these, so change them only on purpose.
"""

from __future__ import annotations

from typing import Final

TRACER_NAME: Final = "hub"

# -- the hub's own span attributes ---------------------------------------------------------------
EXECUTION_ID: Final = "hub.execution.id"
EXECUTION_STATE: Final = "hub.execution.state"
EXECUTION_RESUMED: Final = "hub.execution.resumed"
EXECUTION_PARENT_ID: Final = "hub.execution.parent_id"
FLOW: Final = "hub.flow"
FLOW_NAMESPACE: Final = "hub.flow.namespace"
FLOW_ID: Final = "hub.flow.id"
FLOW_REVISION: Final = "hub.flow.revision"
TRIGGER_TYPE: Final = "hub.trigger.type"

STEP_ID: Final = "hub.step.id"
STEP_TYPE: Final = "hub.step.type"
STEP_PATH: Final = "hub.step.path"
STEP_ATTEMPT: Final = "hub.step.attempt"
STEP_STATE: Final = "hub.step.state"
STEP_CONTROL: Final = "hub.step.control"
STEP_RETRY_REASON: Final = "hub.step.retry_reason"
STEP_RETRY_DELAY: Final = "hub.step.retry_delay"
STEP_RESUMED: Final = "hub.step.resumed"
STEP_WAITED: Final = "hub.step.waited_seconds"
STEP_DURATION_MS: Final = "hub.step.duration_ms"  # on a pure step's event (it has no span to time)
TASK_TYPE: Final = "hub.task.type"  # on an agent's tool call: the task kind that ran
STEP_ERROR: Final = "hub.step.error"  # on a pure step's event: the (redacted) error message
DECIDED_BY: Final = "hub.approval.decided_by"
DECISION: Final = "hub.approval.decision"
DECISION_CHANNEL: Final = "hub.approval.channel"

ERROR_TYPE: Final = "error.type"
HUB_ERROR_RETRYABLE: Final = "hub.error.retryable"

# -- GenAI semantic conventions ------------------------------------------------------------------
GEN_AI_OPERATION_NAME: Final = "gen_ai.operation.name"
GEN_AI_PROVIDER_NAME: Final = "gen_ai.provider.name"
GEN_AI_REQUEST_MODEL: Final = "gen_ai.request.model"
GEN_AI_RESPONSE_MODEL: Final = "gen_ai.response.model"
GEN_AI_RESPONSE_ID: Final = "gen_ai.response.id"
GEN_AI_RESPONSE_FINISH_REASONS: Final = "gen_ai.response.finish_reasons"
GEN_AI_USAGE_INPUT_TOKENS: Final = "gen_ai.usage.input_tokens"
GEN_AI_USAGE_OUTPUT_TOKENS: Final = "gen_ai.usage.output_tokens"
GEN_AI_INPUT_MESSAGES: Final = "gen_ai.input.messages"
GEN_AI_OUTPUT_MESSAGES: Final = "gen_ai.output.messages"
GEN_AI_PROMPT_NAME: Final = "gen_ai.prompt.name"
GEN_AI_TOOL_NAME: Final = "gen_ai.tool.name"
GEN_AI_TOOL_CALL_ID: Final = "gen_ai.tool.call.id"
GEN_AI_TOKEN_TYPE: Final = "gen_ai.token.type"
PROMPT_VERSION: Final = "hub.prompt.version"
PROMPT_HASH: Final = "hub.prompt.hash"
LLM_COST: Final = "hub.llm.cost"
LLM_REPAIR_ATTEMPTS: Final = "hub.llm.repair_attempts"
LLM_CACHED: Final = "hub.llm.cached"

# dotted task types that are model steps, not tools: their spans are ``step {id}`` with ``chat`` children
MODEL_STEP_PREFIXES: Final = ("llm.", "langchain.")

OPERATION_CHAT: Final = "chat"
OPERATION_EXECUTE_TOOL: Final = "execute_tool"

# -- span events ---------------------------------------------------------------------------------
EVENT_PAUSED: Final = "hub.paused"
EVENT_RESUMED: Final = "hub.resumed"
EVENT_LOG: Final = "hub.log"
EVENT_RETRY: Final = "hub.retry"

# -- metrics -------------------------------------------------------------------------------------
METRIC_EXECUTIONS: Final = "hub.executions"
METRIC_STEP_DURATION: Final = "hub.step.duration"
METRIC_QUEUE_WAIT: Final = "hub.execution.queue_wait"
METRIC_TOKEN_USAGE: Final = "gen_ai.client.token.usage"
METRIC_OPERATION_DURATION: Final = "gen_ai.client.operation.duration"
METRIC_LLM_COST: Final = "hub.llm.cost"

TOKEN_BUCKETS: Final = (1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144, 1048576, 4194304, 16777216, 67108864)
DURATION_BUCKETS: Final = (0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92)

# -- environment ---------------------------------------------------------------------------------
ENV_CAPTURE_CONTENT: Final = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
ENV_HUB_TRACING: Final = "HUB_TRACING"
ENV_RETENTION_DAYS: Final = "HUB_TRACE_RETENTION_DAYS"
ENV_TRACE_STORE: Final = "HUB_TRACE_STORE"
ENV_PURE_STEPS: Final = "HUB_TRACE_PURE_STEPS"
