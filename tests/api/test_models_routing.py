"""The models file: two upstreams, an Azure OpenAI deployment and the local model in one
server, each answering its own model names; names nobody serves refused when they are given.

The upstreams are scripted model servers; the Azure one is a scripted server too, checked for
the path, `api-version` and `api-key` header Azure OpenAI takes.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import openai
import pytest
from support.errors import sdk_error
from support.live import TEST_SERVER_ENV, Databases, openai_client
from support.scripted_model import Reply, ScriptedModelServer
from support.server import ServerProcess
from support.stored import stored_rows

ALPHA_KEY = "alpha-secret"
AZURE_KEY = "azure-secret"
DEPLOYMENT = "gpt4o-deployment"
API_VERSION = "2024-10-21"


@dataclass(frozen=True)
class Routed:
    server: ServerProcess
    alpha: ScriptedModelServer  # serves `alpha-*`, with a key sent as Bearer
    beta: ScriptedModelServer  # serves `beta` keyless, and stands in for Azure's `azure-gpt`


@pytest.fixture(scope="module")
def routed(
    databases: Databases,
    tmp_path_factory: pytest.TempPathFactory,
    scripted_model: ScriptedModelServer,
) -> Iterator[Routed]:
    folder = tmp_path_factory.mktemp("models-routing")
    with ScriptedModelServer() as beta:
        models = folder / "models.toml"
        models.write_text(_models_file(scripted_model, beta))
        env = {
            **TEST_SERVER_ENV,
            "THREADLINE_OPENAI_BASE_URL": "",
            "THREADLINE_MODELS_FILE": str(models),
            "THREADLINE_TEST_ALPHA_KEY": ALPHA_KEY,
            "THREADLINE_TEST_AZURE_KEY": AZURE_KEY,
        }
        with ServerProcess(databases.new(), env, folder / "server.log") as server:
            yield Routed(server, scripted_model, beta)


def _models_file(alpha: ScriptedModelServer, beta: ScriptedModelServer) -> str:
    return f"""
[[models]]
name = "narrow-*"
provider = "openai"
base_url = "{alpha.base_url}"
api_key_env = "THREADLINE_TEST_ALPHA_KEY"
context_window = 1200

[[models]]
name = "alpha-*"
provider = "openai"
base_url = "{alpha.base_url}"
api_key_env = "THREADLINE_TEST_ALPHA_KEY"

[[models]]
name = "beta"
provider = "openai"
base_url = "{beta.base_url}"

[[models]]
name = "azure-gpt"
provider = "azure_openai"
endpoint = "{beta.root_url}"
deployment = "{DEPLOYMENT}"
api_version = "{API_VERSION}"
api_key_env = "THREADLINE_TEST_AZURE_KEY"

[[models]]
name = "tiny"
provider = "local"
"""


def _answer(
    client: openai.OpenAI, model: str, max_completion_tokens: int | None = None
) -> tuple[str, str]:
    """The run's status and its reply, for a run of an assistant on `model`."""
    assistant = client.beta.assistants.create(model=model)
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Say hi."}])
    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, max_completion_tokens=max_completion_tokens
    )
    messages = client.beta.threads.messages.list(thread_id=thread.id, order="desc", limit=1)
    reply = messages.data[0]
    text = "".join(part.text.value for part in reply.content if part.type == "text")
    return run.status, text if reply.role == "assistant" else ""


def test_each_model_is_answered_by_its_own_upstream(routed: Routed) -> None:
    client = openai_client(routed.server)
    alpha_model = ScriptedModelServer.unique_name("alpha")
    routed.alpha.script(alpha_model, Reply("from alpha"))
    routed.beta.script("beta", Reply("from beta"))
    routed.beta.script("azure-gpt", Reply("from azure"))

    assert _answer(client, alpha_model) == ("completed", "from alpha")
    assert _answer(client, "beta") == ("completed", "from beta")
    assert _answer(client, "azure-gpt") == ("completed", "from azure")

    assert routed.beta.requests(alpha_model) == []
    assert routed.alpha.requests("beta") == routed.alpha.requests("azure-gpt") == []
    (alpha_call,) = routed.alpha.received(alpha_model)
    assert alpha_call.path == "/v1/chat/completions"
    assert alpha_call.headers["authorization"] == f"Bearer {ALPHA_KEY}"
    (beta_call,) = routed.beta.received("beta")
    assert beta_call.path == "/v1/chat/completions"
    assert "authorization" not in beta_call.headers
    (azure_call,) = routed.beta.received("azure-gpt")
    assert azure_call.path == f"/openai/deployments/{DEPLOYMENT}/chat/completions"
    assert azure_call.query == {"api-version": API_VERSION}
    assert azure_call.headers["api-key"] == AZURE_KEY
    assert "authorization" not in azure_call.headers


def test_a_run_overriding_the_model_goes_where_its_own_model_is_served(routed: Routed) -> None:
    client = openai_client(routed.server)
    routed.beta.script("beta", Reply("beta, not alpha"))
    assistant = client.beta.assistants.create(model=ScriptedModelServer.unique_name("alpha"))
    thread = client.beta.threads.create(messages=[{"role": "user", "content": "Who?"}])

    run = client.beta.threads.runs.create_and_poll(
        thread_id=thread.id, assistant_id=assistant.id, model="beta"
    )

    assert (run.status, run.model) == ("completed", "beta")
    assert routed.alpha.requests(assistant.model) == []


def test_the_local_model_answers_its_own_name(routed: Routed) -> None:
    client = openai_client(routed.server)

    status, text = _answer(client, "tiny", max_completion_tokens=3)

    # A real answer, cut at three tokens unless the model ends sooner.
    assert status in ("completed", "incomplete")
    assert text.strip()
    assert routed.alpha.requests("tiny") == routed.beta.requests("tiny") == []


def test_the_models_served_are_listed(routed: Routed) -> None:
    client = openai_client(routed.server)

    listed = client.models.list()

    # Exact names in file order; a pattern is no name a client could send.
    assert [(m.id, m.object, m.owned_by) for m in listed.data] == [
        ("beta", "model", "openai"),
        ("azure-gpt", "model", "azure_openai"),
        ("tiny", "model", "local"),
    ]
    assert all(isinstance(m.created, int) and m.created > 0 for m in listed.data)
    covered = client.models.retrieve("alpha-anything")
    assert (covered.id, covered.owned_by) == ("alpha-anything", "openai")
    assert client.models.retrieve("tiny").id == "tiny"
    with pytest.raises(openai.NotFoundError) as raised:
        client.models.retrieve("gamma")
    assert sdk_error(raised.value, 404)["message"] == "No model found with id 'gamma'."


def _refused_for_model(raised: pytest.ExceptionInfo[openai.BadRequestError]) -> None:
    error = sdk_error(raised.value, 400)
    assert error["param"] == "model"
    assert "'gamma'" in error["message"]
    assert "not served" in error["message"]


def test_a_model_nobody_serves_is_refused_with_nothing_stored(routed: Routed) -> None:
    client = openai_client(routed.server)
    served = client.beta.assistants.create(model="beta")
    thread = client.beta.threads.create()
    assistants = [a.id for a in client.beta.assistants.list(limit=100)]
    rows = stored_rows(routed.server.database_url)

    with pytest.raises(openai.BadRequestError) as raised:
        client.beta.assistants.create(model="gamma")
    _refused_for_model(raised)
    with pytest.raises(openai.BadRequestError) as raised:
        client.beta.assistants.update(served.id, model="gamma", name="renamed")
    _refused_for_model(raised)
    with pytest.raises(openai.BadRequestError) as raised:
        client.beta.threads.runs.create(
            thread_id=thread.id,
            assistant_id=served.id,
            model="gamma",
            additional_messages=[{"role": "user", "content": "not kept"}],
        )
    _refused_for_model(raised)
    with pytest.raises(openai.BadRequestError) as raised:
        client.beta.threads.create_and_run(
            assistant_id=served.id,
            model="gamma",
            thread={"messages": [{"role": "user", "content": "not kept"}]},
        )
    _refused_for_model(raised)

    assert [a.id for a in client.beta.assistants.list(limit=100)] == assistants
    assert client.beta.assistants.retrieve(served.id).model == "beta"
    assert client.beta.assistants.retrieve(served.id).name is None
    assert stored_rows(routed.server.database_url) == rows


def test_a_response_that_would_not_fit_is_cut_or_refused_as_its_truncation_says(
    routed: Routed,
) -> None:
    """On a model with a small window, `truncation: "auto"` leaves out the conversation's
    oldest items, `"disabled"` fails the response instead; counting its input tokens says how
    much of it is sent, or refuses as the response would."""
    client = openai_client(routed.server)
    model = ScriptedModelServer.unique_name("narrow")
    routed.alpha.script(model, Reply("short", usage=False))
    long_items = [
        {"role": "user", "content": f"item {n}: " + "lorem ipsum dolor " * 60} for n in range(6)
    ]
    conversation = client.conversations.create(items=long_items)  # type: ignore[arg-type]
    counted = client.responses.input_tokens.count(
        model=model, conversation=conversation.id, input="Last?"
    )
    cut = client.responses.create(model=model, conversation=conversation.id, input="Last?")
    assert cut.status == "completed" and cut.truncation == "auto"
    [sent] = routed.alpha.requests(model)
    texts = [m["content"] for m in sent["messages"]]
    assert texts[-1] == "Last?" and "item 0" not in " ".join(texts)
    assert 0 < len(texts) - 1 < len(long_items)
    # The count is the prompt the run built (the scripted model counts nothing itself).
    assert cut.usage is not None and counted.input_tokens == cut.usage.input_tokens

    failed = client.responses.create(
        model=model, conversation=conversation.id, input="Again?", truncation="disabled"
    )
    assert failed.status == "failed" and failed.truncation == "disabled"
    assert failed.error is not None and failed.error.code == "invalid_prompt"
    assert "truncation is disabled" in failed.error.message
    assert len(routed.alpha.requests(model)) == 1  # the model was not called again
    with pytest.raises(openai.BadRequestError) as caught:
        client.responses.input_tokens.count(
            model=model, conversation=conversation.id, input="x", truncation="disabled"
        )
    assert sdk_error(caught.value, 400)["code"] == "context_length_exceeded"
