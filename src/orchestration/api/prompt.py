"""The instructions to give a coding agent for a task (``agent-prompt``, AGENT-WF-019).

Stability: provisional (the JSON shape's keys are stable; the text may be reworded).

:func:`agent_prompt` puts into one document what an agent must know to work on
a task through the API: the task, the contract in words (each phase with the
tools it allows, with their path limits, and forbids; each transition with
the artifacts it requires and the gates that guard it), the rules of the
road (phase tokens, heartbeats, sandbox paths) and an example using
:class:`orchestration.sdk.AgentClient`. :func:`render_prompt` writes it as
Markdown text. Neither imports FastAPI.
"""

from __future__ import annotations

from typing import Any

from ..enforcement.contract import Contract, Mode
from ..enforcement.gates import GATE_DESCRIPTIONS
from ..tasks.model import Task

__all__ = ["agent_prompt", "render_prompt"]

_TOOL_CALLS = {
    "read_file": "agent.read_file(path)",
    "write_file": "agent.write_file(path, content)",
    "list_files": 'agent.list_files(".", pattern="**/*.py")',
    "run_tests": "agent.run_tests()",
    "run_command": 'agent.run_command("make lint")',
}


def agent_prompt(task: Task, contract: Contract, *, url: str, lease_ttl: float) -> dict[str, Any]:
    """The instructions for ``task`` under ``contract``, as a JSON-ready document.

    Args:
        url: where the API is served.
        lease_ttl: seconds a lease lives without a heartbeat.
    """
    phases = []
    for name, phase in contract.phases.items():
        phases.append({
            "name": name,
            "description": phase.description,
            "terminal": phase.terminal,
            "allowed": [{"tool": rule.tool, "paths": list(rule.paths)} for rule in phase.allowed],
            "forbidden": sorted(phase.forbidden),
            "next": list(contract.next_phases(name)),
        })  # fmt: skip
    transitions = [
        {
            "trigger": step.trigger, "source": step.source, "dest": step.dest,
            "artifacts": [{"name": name, "schema": f"schemas/artifacts/{name}.schema.json"}
                          for name in step.artifacts],
            "gates": [{"name": gate, "description": GATE_DESCRIPTIONS.get(gate, "")}
                      for gate in step.gates],
            "requests_review": step.requests_review,
        }
        for step in contract.steps
    ]  # fmt: skip
    context = task.context_requirements
    return {
        "task": {
            "task_id": task.task_id,
            "workstream_id": task.workstream_id,
            "name": task.name,
            "description": task.description,
            "capabilities": list(task.worker_requirements.capabilities),
            "required_files": list(context.required_files),
            "exclude_patterns": list(context.exclude_patterns),
            "post_execution": list(task.validation_rules.post_execution),
        },
        "url": url,
        "contract": contract.file,
        "mode": str(contract.mode),
        "initial": contract.initial,
        "phases": phases,
        "transitions": transitions,
        "tests_command": contract.test_command,
        "token_ttl_seconds": contract.token_ttl,
        "lease_ttl_seconds": lease_ttl,
        "sdk_example": _example(task, contract, url),
    }


def _example(task: Task, contract: Contract, url: str) -> str:
    """A short Python session with the SDK, following the contract from its first phase."""
    lines = [
        "from orchestration.sdk import AgentClient, GateFailed, InvalidArtifacts",
        "",
        f'with AgentClient("my-agent", "{url}") as agent:',
        "    claimed = agent.claim_task()          # NothingToClaim when nothing is ready",
        f"    print(claimed.task_id, agent.phase)   # the next ready task ({task.task_id} in turn)",
        '    print(agent.list_files(".", pattern="**/*.py"))',
    ]
    phase, seen, first = contract.initial, {contract.initial}, True
    while True:
        step = next((s for s in contract.steps if s.source == phase and s.dest not in seen), None)
        if step is None:
            break
        artifacts = ", ".join(f'"{name}": {{...}}' for name in step.artifacts)
        rules = [rule for rule in contract.phases[phase].allowed if rule.tool == "write_file"]
        if rules:
            path = "tests/test_feature.py" if all(r.paths for r in rules) else "src/feature.py"
            lines.append(f'    agent.write_file("{path}", "...")')
        if "test_result" in step.artifacts:
            lines.append("    result = agent.run_tests()            # the test_result artifact")
            artifacts = artifacts.replace('"test_result": {...}', '"test_result": result')
        call = f'agent.request_transition("{step.dest}", {{{artifacts}}})'
        if first:
            lines += [
                "    try:",
                f"        {call}",
                "    except (GateFailed, InvalidArtifacts) as refused:",
                "        print(refused.detail, refused.errors)  # fix it, then ask again",
                "    agent.heartbeat()                     # renew the lease, often",
            ]
        else:
            lines.append(f"    {call}")
        seen.add(step.dest)
        phase, first = step.dest, False
    return "\n".join(lines) + "\n"


def _tool_text(rule: dict[str, Any]) -> str:
    if rule["paths"]:
        return f"{rule['tool']} (only on {', '.join(rule['paths'])})"
    return str(rule["tool"])


def render_prompt(document: dict[str, Any]) -> str:
    """The instructions as Markdown text, for pasting into an agent's prompt."""
    task = document["task"]
    out = [f"# Task {task['task_id']}: {task['name']}", ""]
    if task["description"]:
        out += [task["description"], ""]
    if task["required_files"]:
        out.append(f"Start from these files: {', '.join(task['required_files'])}.")
    if task["exclude_patterns"]:
        out.append(f"Never touch paths matching: {', '.join(task['exclude_patterns'])}.")
    if task["post_execution"]:
        out.append(f"Checks run after the work: {'; '.join(task['post_execution'])}.")
    if task["required_files"] or task["exclude_patterns"] or task["post_execution"]:
        out.append("")
    strict = document["mode"] == str(Mode.STRICT)
    order = " → ".join(phase["name"] for phase in document["phases"])
    out += [
        "## How you work",
        "",
        f"You work through the orchestration agent API at {document['url']} (OpenAPI docs: "
        f"{document['url']}/docs). Claim the task, then move it through the phases of "
        f"{document['contract']}: {order}. You start in {document['initial']}. Each phase "
        "allows only some tools, and leaving it takes the artifacts and gates below. "
        + (
            "The contract is enforced strictly: a forbidden tool or a failing gate is refused."
            if strict
            else "The contract is permissive: violations are let through but audited as "
            "warnings; keep to it anyway."
        ),
        "",
        "## Phases",
        "",
    ]
    for phase in document["phases"]:
        out.append(f"### {phase['name']}{' (final)' if phase['terminal'] else ''}")
        out.append("")
        out.append(phase["description"])
        allowed = ", ".join(_tool_text(rule) for rule in phase["allowed"]) or "none"
        out.append(f"- Tools allowed: {allowed}.")
        if phase["forbidden"]:
            out.append(f"- Tools forbidden: {', '.join(phase['forbidden'])}.")
        for step in (t for t in document["transitions"] if t["source"] == phase["name"]):
            out.append(f"- To move to {step['dest']} (trigger `{step['trigger']}`), submit:")
            for artifact in step["artifacts"]:
                out.append(f"  - artifact `{artifact['name']}` (schema: {artifact['schema']})")
            for gate in step["gates"]:
                out.append(f"  - and pass gate `{gate['name']}`: {gate['description']}")
            if step["requests_review"]:
                out.append("  - this step requests a review of your work")
        out.append("")
    ttl = document["lease_ttl_seconds"]
    out += [
        "## Rules",
        "",
        "- The claim returns a phase token; send it as `Authorization: Bearer <token>`. Each "
        "transition returns a new one and revokes the old (the SDK keeps it for you).",
        f"- Your lease lasts {ttl:g} s without a heartbeat: heartbeat at least every "
        f"{ttl / 2:g} s, also between long tool calls, or the task is taken back.",
        "- Paths are relative to your sandbox (a git worktree of the repository); `..`, "
        "absolute paths and links leading outside are refused. Every tool call is audited.",
        f"- run_tests runs `{document['tests_command']}` in the sandbox; submit its result as "
        "the test_result artifact.",
        "- Errors are problem documents (application/problem+json) naming the requirement "
        "violated and what to do; a 409 names the gate or step that refused.",
        "",
        "## With the Python SDK",
        "",
        "```python",
        document["sdk_example"].rstrip("\n"),
        "```",
        "",
        "Tools: " + "; ".join(f"{name}: `{call}`" for name, call in _TOOL_CALLS.items()) + ".",
        "",
    ]
    return "\n".join(out)
