"""The samples of the pinned `azure-ai-projects` 2.x, run unchanged against the service over
TLS: the prompt-agent, function, file_search, code_interpreter and Responses samples.

`make setup` unpacks them from the client's source package into the venv. Each runs in a
process of its own, as a user runs it, with the settings it reads from its environment: the
project endpoint, a model name of the scripted model and an agent name. The one other change
is the credential: the service's bearer token is its API key, so `DefaultAzureCredential`
hands out that key (`support/sample_credential`). The model's answers are scripted per
sample, tool calls included, so each tool really runs: the tests read what the code printed
and what the model was sent.

The samples not run here need what this service does not offer: other kinds of agents
(workflows, hosted containers, external agents), tools it does not run (web search, Bing,
Azure AI Search, SharePoint, Fabric, A2A, computer use, image generation, memory search,
toolboxes, Azure Functions), or connections of those tools. The async twins of the samples
here run as well; a few of them are run too.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from support.azure_agents import API_KEY
from support.azure_agents import tls_server as azure_tls_server
from support.live import Databases
from support.scripted_model import CallTools, Reply, ScriptedModelServer, Step, ToolCall
from support.server import ServerProcess

SAMPLES = Path(sys.prefix) / "azure-ai-projects-samples" / "samples"
CREDENTIAL = Path(__file__).resolve().parents[1] / "support" / "sample_credential"
CONNECTION = "github"

CALENDAR = {"name": "Science fair", "date": "2025-11-07", "participants": ["Alice", "Bob"]}
TRANSPORT_CODE = (
    "import csv\n"
    "rows = [r for r in csv.DictReader(open('/mnt/data/synthetic_500_quarterly_results.csv'))"
    " if r['sector'] == 'TRANSPORTATION']\n"
    "with open('/mnt/data/transport_profit.csv', 'w') as out:\n"
    "    out.writelines(f\"{r['name']},{r['operating_profit']}\\n\" for r in rows)\n"
    "print(len(rows), 'companies')"
)
SUM_CODE = (
    "import csv\nprint(sum(int(r['x']) for r in csv.DictReader(open('/mnt/data/numbers.csv'))))"
)
TABLE_CODE = "print('\\n'.join(' '.join(str(a * b) for b in range(1, 11)) for a in range(1, 11)))"


@dataclass
class Sample:
    path: str
    steps: list[Step]
    printed: list[str]
    # Something each tool's answer to the model holds, in the order the tools answered.
    tool_said: list[str] = field(default_factory=list)


CASES = [
    Sample(
        "agents/sample_agent_basic.py",
        [Reply("About 213,000 square miles."), Reply("Paris.")],
        ["Response output: About 213,000 square miles.", "Response output: Paris."],
    ),
    Sample(
        "agents/sample_agent_retrieve_basic.py",
        [Reply("5,280 feet.")],
        ["Response output: 5,280 feet."],
    ),
    Sample(
        "agents/sample_agent_stream_events.py",
        [Reply("Paris is the capital of France.")],
        ["Paris is the capital of France.", "Response completed.", "Conversation deleted"],
    ),
    Sample(
        "agents/sample_agent_structured_output.py",
        [Reply(json.dumps(CALENDAR))],
        [f"Response output: {json.dumps(CALENDAR)}"],
    ),
    Sample(
        "agents/tools/sample_agent_function_tool.py",
        [
            CallTools([ToolCall("get_horoscope", {"sign": "Aquarius"})]),
            Reply("You will befriend a baby otter."),
        ],
        ["Agent response: You will befriend a baby otter."],
        ["Next Tuesday you will befriend a baby otter."],
    ),
    Sample(
        "agents/tools/sample_agent_code_interpreter.py",
        [CallTools([ToolCall("code_interpreter", {"code": TABLE_CODE})]), Reply("Done.")],
        ["Code Interpreter code:", TABLE_CODE, "Agent response: Done."],
        ["10 20 30 40 50 60 70 80 90 100"],
    ),
    Sample(
        "agents/tools/sample_agent_code_interpreter_with_files.py",
        [
            CallTools([ToolCall("code_interpreter", {"code": TRANSPORT_CODE})]),
            Reply("Here it is: [the table](sandbox:/mnt/data/transport_profit.csv)."),
        ],
        ["Found generated file: transport_profit.csv", "File downloaded successfully"],
        ["companies"],
    ),
    Sample(
        "agents/tools/sample_agent_code_interpreter_structured_inputs.py",
        [CallTools([ToolCall("code_interpreter", {"code": SUM_CODE})]), Reply("x sums to 6.")],
        ["Agent response: x sums to 6."],
        ["6"],
    ),
    Sample(
        "agents/tools/sample_agent_file_search.py",
        [
            CallTools([ToolCall("file_search", {"queries": ["Contoso products"]})]),
            Reply("Contoso makes SmartView Glasses."),
        ],
        ["Agent response: Contoso makes SmartView Glasses.", "Agent deleted"],
        ["SmartView Glasses"],
    ),
    Sample(
        "agents/tools/sample_agent_file_search_in_stream.py",
        [
            CallTools([ToolCall("file_search", {"queries": ["Contoso products features"]})]),
            Reply("Contoso makes SmartView Glasses."),
            CallTools([ToolCall("file_search", {"queries": ["Smart Eyewear features"]})]),
            Reply("They filter blue light【0:0†product_info.md】."),
        ],
        ["File Citation - Filename: product_info.md", "Full response: Contoso makes"],
        ["SmartView Glasses"],
    ),
    Sample(
        "agents/tools/sample_agent_file_search_structured_inputs.py",
        [
            CallTools([ToolCall("file_search", {"queries": ["Contoso products"]})]),
            Reply("Contoso makes SmartView Glasses."),
        ],
        ["Agent response: Contoso makes SmartView Glasses."],
        ["SmartView Glasses"],
    ),
    Sample(
        # Its API is on the internet, out of the tests' reach: the model answers without
        # calling it (`test_foundry_agents.py` calls an OpenAPI tool on the tests' own API).
        "agents/tools/sample_agent_openapi.py",
        [Reply("It is sunny in Seattle.")],
        ["Agent response: It is sunny in Seattle."],
    ),
    # The MCP samples' servers are on the internet too: the response tells the model their
    # tools could not be listed, and it answers without them (`test_responses_tools.py` and
    # `test_foundry_agents.py` call a real MCP server, one on a project connection among them).
    Sample(
        "agents/tools/sample_agent_mcp.py",
        [Reply("The specs describe Azure's REST APIs."), Reply("That is all.")],
        ["Agent response: That is all."],
    ),
    Sample(
        "agents/tools/sample_agent_mcp_with_project_connection.py",
        [Reply("I cannot reach GitHub."), Reply("Still not.")],
        ["Response: Still not."],
    ),
    Sample(
        "agents/sample_agent_basic_async.py",
        [Reply("About 213,000 square miles."), Reply("Paris.")],
        ["Response output: About 213,000 square miles.", "Response output: Paris."],
    ),
    Sample(
        "agents/tools/sample_agent_function_tool_async.py",
        [
            CallTools([ToolCall("get_horoscope", {"sign": "Aquarius"})]),
            Reply("You will befriend a baby otter."),
        ],
        ["Agent response: You will befriend a baby otter."],
        ["Next Tuesday you will befriend a baby otter."],
    ),
    Sample(
        "agents/tools/sample_agent_code_interpreter_with_files_async.py",
        [
            CallTools([ToolCall("code_interpreter", {"code": TRANSPORT_CODE})]),
            Reply("Here it is: [the table](sandbox:/mnt/data/transport_profit.csv)."),
        ],
        ["Found generated file: transport_profit.csv", "File downloaded successfully"],
        ["companies"],
    ),
    Sample(
        "responses/sample_responses_basic.py",
        [Reply("About 213,000 square miles."), Reply("Paris.")],
        ["Response output: About 213,000 square miles.", "Response output: Paris."],
    ),
    Sample(
        "responses/sample_responses_basic_without_aiprojectclient.py",
        [Reply("5,280 feet.")],
        ["Response output: 5,280 feet."],
    ),
    Sample(
        "responses/sample_responses_image_input.py",
        [Reply("A drawing.")],
        ["Response output: A drawing."],
    ),
    Sample(
        "responses/sample_responses_stream_events.py",
        [Reply("Paris is the capital.")],
        ["Paris is the capital.", "Response completed."],
    ),
    Sample(
        "responses/sample_responses_stream_manager.py",
        [Reply("Paris is the capital.")],
        ["Paris is the capital.", "Response completed."],
    ),
    Sample(
        "responses/sample_responses_structured_output.py",
        [Reply(json.dumps(CALENDAR))],
        [f"Response output: {json.dumps(CALENDAR)}"],
    ),
]


@pytest.fixture(scope="module")
def sample_server(
    tmp_path_factory: pytest.TempPathFactory, scripted_model: ScriptedModelServer
) -> Iterator[ServerProcess]:
    """On SQLite alone: what the samples do is tested on both stores by the other tests; here
    it is the samples, as written, that are tested."""
    folder = tmp_path_factory.mktemp("foundry-samples")
    # The project connection the MCP sample names (`MCP_PROJECT_CONNECTION_ID`).
    connections = folder / "connections.toml"
    connections.write_text(
        f'[connections.{CONNECTION}]\nkind = "bearer"\nsecret_env = "SAMPLES_GITHUB_TOKEN"\n'
    )
    settings = {"THREADLINE_CONNECTIONS_FILE": str(connections), "SAMPLES_GITHUB_TOKEN": "t0ken"}
    databases = Databases("sqlite", folder)
    with azure_tls_server(databases, folder, scripted_model.base_url, settings) as server:
        yield server


def run_sample(server: ServerProcess, path: Path, model: str, project: str) -> str:
    """What the sample printed; it must end well."""
    env = {
        **os.environ,
        "FOUNDRY_PROJECT_ENDPOINT": f"{server.url}/api/projects/{project}",
        "FOUNDRY_MODEL_NAME": model,
        "FOUNDRY_AGENT_NAME": project,
        "MCP_PROJECT_CONNECTION_ID": CONNECTION,
        "THREADLINE_SAMPLE_KEY": API_KEY,
        # The test authority, for the Azure client (requests) and the OpenAI one (httpx).
        "REQUESTS_CA_BUNDLE": str(server.verify),
        "SSL_CERT_FILE": str(server.verify),
        "PYTHONPATH": str(CREDENTIAL),
    }
    done = subprocess.run(
        [sys.executable, str(path)],
        cwd=path.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-4000:]
    return done.stdout


def _tool_answers(requests: list[dict[str, Any]]) -> list[str]:
    return [
        message["content"]
        for request in requests
        for message in request["messages"]
        if message["role"] == "tool"
    ]


@pytest.mark.parametrize("sample", CASES, ids=[case.path for case in CASES])
def test_the_sample_runs_unchanged(
    sample: Sample, sample_server: ServerProcess, scripted_model: ScriptedModelServer
) -> None:
    path = SAMPLES / sample.path
    assert path.is_file(), f"{path} is missing: `make setup` unpacks the samples"
    model = scripted_model.unique_name()
    scripted_model.script(model, *sample.steps)
    # A project of its own: some samples name their agent themselves.
    project = f"s{model[-12:]}".replace("_", "-")

    printed = run_sample(sample_server, path, model, project)

    for line in sample.printed:
        assert line in printed, printed
    requests = scripted_model.requests(model)
    assert len(requests) == len(sample.steps)
    answers = _tool_answers(requests)
    for said in sample.tool_said:
        assert any(said in answer for answer in answers), answers


def test_the_structured_output_sample_s_agent_asks_for_its_schema(
    sample_server: ServerProcess, scripted_model: ScriptedModelServer
) -> None:
    model = scripted_model.unique_name()
    scripted_model.script(model, Reply(json.dumps(CALENDAR)))
    run_sample(
        sample_server, SAMPLES / "agents/sample_agent_structured_output.py", model, "calendar"
    )
    [request] = scripted_model.requests(model)
    wanted = request["response_format"]
    assert wanted["type"] == "json_schema"
    assert wanted["json_schema"]["name"] == "CalendarEvent"
    assert set(wanted["json_schema"]["schema"]["properties"]) == {"name", "date", "participants"}
