"""Object ids with the prefixes the OpenAI clients expect (`asst_`, `thread_`, ...)."""

from __future__ import annotations

import secrets
from enum import StrEnum


class IdKind(StrEnum):
    ASSISTANT = "asst_"
    THREAD = "thread_"
    # A thread made through the Conversations API: the same record.
    CONVERSATION = "conv_"
    MESSAGE = "msg_"
    # A thread's items that are not messages (Responses and Conversations).
    FUNCTION_CALL = "fc_"
    FUNCTION_OUTPUT = "fco_"
    RUN = "run_"
    # A run made through the Responses API: a response is a run.
    RESPONSE = "resp_"
    STEP = "step_"
    TOOL_CALL = "call_"
    ACTIVITY = "act_"
    # A response's request for its client's approval of an MCP call.
    APPROVAL_REQUEST = "mcpr_"
    FILE = "file-"
    VECTOR_STORE = "vs_"
    FILE_BATCH = "vsfb_"
    JOB = "job_"


def new_id(kind: IdKind) -> str:
    """A random id: unguessable, so ids never leak how many objects exist."""
    return f"{kind.value}{secrets.token_urlsafe(18).replace('-', 'a').replace('_', 'b')}"
