"""The PowerShell entry points of ``scripts/validate/`` and the compliance workflow.

PowerShell cannot be installed where these tests run, so each script is read
as a syntax tree with the tree-sitter PowerShell grammar: it must parse
cleanly, declare its parameters, and build the command line that the Python
validator expects. That command line is then run for real, so that a flag
renamed in the Python CLI breaks a test here too (COMPLIANCE-012).
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import NamedTuple

import pytest
import tree_sitter_powershell
import yaml
from tree_sitter import Language, Node, Parser

from conftest import REPO

SCRIPTS = REPO / "scripts" / "validate"
MASTER = "validate_compliance.ps1"
SECTION_OF = {
    "validate_state_obs.ps1": "STATE-OBS",
    "validate_task_defs.ps1": "TASK-DEF",
    "validate_dag_structure.ps1": "DAG-VIEW",
    "validate_failure_modes.ps1": "ERR-FM",
}
ENTRY_POINTS = [*SECTION_OF, MASTER]
FORMATS = ("text", "json", "junit", "github")

PARSER = Parser(Language(tree_sitter_powershell.language()))

# The grammar nests every expression in this chain of nodes; each holds a single
# child unless an operator is used (`a + b`, `-not $x`, `a | b`).
WRAPPERS = frozenset(
    {
        "pipeline",
        "pipeline_chain",
        "logical_expression",
        "bitwise_expression",
        "comparison_expression",
        "additive_expression",
        "multiplicative_expression",
        "format_expression",
        "range_expression",
        "array_literal_expression",
        "unary_expression",
        "left_assignment_expression",
    }
)


class Var(NamedTuple):
    """A script variable used as a word of a command line, e.g. ``$Root``."""

    name: str


Word = str | Var  # a quoted string's value, or a variable


class Parameter(NamedTuple):
    """A parameter of a script's ``param()`` block."""

    type: str | None  # the type literal without brackets: "switch", "string[]"
    default: tuple[Word, ...] | None  # the words of the default value; None: no default
    choices: tuple[str, ...] | None  # the values of [ValidateSet(...)]


class Step(NamedTuple):
    """Words a script adds to its argument array, and under which condition."""

    words: tuple[Word, ...]
    when: str | None = None  # the variable of `if ($Switch) { ... }`; None: always
    each: tuple[str, str] | None = None  # `foreach ($item in $List)`: ("List", "item")


class CommandLine(NamedTuple):
    """How a script builds ``$arguments`` and where it runs them."""

    steps: tuple[Step, ...]
    invocations: tuple[Node, ...]  # each command that splats @arguments


class Unreadable(Exception):
    """A construct that the reading of a script here does not follow."""

    def __init__(self, node: Node, what: str) -> None:
        row, column = node.start_point
        msg = (
            f"line {row + 1}, column {column + 1}: {what}: {text(node)[:60]!r} "
            "(keep the entry points to quoted strings, variables, arrays, "
            "`if ($Switch)` and `foreach` so that these tests can read them)"
        )
        super().__init__(msg)


def text(node: Node) -> str:
    return (node.text or b"").decode("utf-8")


def walk(node: Node) -> Iterator[Node]:
    """Every node under ``node`` (itself included), in document order."""
    yield node
    for child in node.children:
        yield from walk(child)


def statements(node: Node) -> list[Node]:
    """The statements of a ``statement_list``, without comments."""
    return [child for child in node.named_children if child.type != "comment"]


def only(nodes: Sequence[Node], what: str) -> Node:
    assert len(nodes) == 1, f"expected one {what}, found {len(nodes)}"
    return nodes[0]


def child_of_type(node: Node, kind: str) -> Node:
    return only([child for child in node.named_children if child.type == kind], kind)


def field(node: Node, name: str) -> Node:
    found = node.child_by_field_name(name)
    if found is None:
        raise Unreadable(node, f"no {name}")
    return found


def parse(source: bytes) -> Node:
    return PARSER.parse(source).root_node


def read(script: str) -> Node:
    return parse((SCRIPTS / script).read_bytes())


def syntax_errors(root: Node) -> list[str]:
    """Every ERROR and MISSING node under ``root``, located."""
    return [
        f"{node.start_point[0] + 1}:{node.start_point[1] + 1}: "
        + (f"missing {node.type!r}" if node.is_missing else f"cannot parse {text(node)[:60]!r}")
        for node in walk(root)
        if node.is_error or node.is_missing
    ]


def unwrap(node: Node) -> Node:
    """The operand inside the grammar's chain of single-child expression nodes."""
    while node.type in WRAPPERS and node.child_count == 1:
        node = node.children[0]
    return node


def variable_name(node: Node) -> str:
    """``Root`` for ``$Root`` (or the splat ``@Root``)."""
    if node.type != "variable":
        raise Unreadable(node, "not a variable")
    return text(node)[1:]


def string_value(node: Node) -> str:
    """The value of a quoted string without expansions."""
    inner = only(node.named_children, "string")
    raw = text(inner)
    if inner.type == "verbatim_string_characters":  # '...': '' is a quote
        return raw[1:-1].replace("''", "'")
    if inner.type == "expandable_string_literal" and not set("$`") & set(raw):
        return raw[1:-1]
    raise Unreadable(node, "a string with expansions or escapes")


def words(node: Node) -> list[Word]:
    """The words an expression stands for, e.g. ``'--root', $Root`` or ``@(...)``."""
    node = unwrap(node)
    if node.type == "array_literal_expression":  # a, b, c
        return [word for item in node.named_children for word in words(item)]
    if node.type == "array_expression":  # @( ... ): its statements' values, flattened
        body = node.child_by_field_name("statements")
        return [] if body is None else [w for item in statements(body) for w in words(item)]
    if node.type == "string_literal":
        return [string_value(node)]
    if node.type == "variable":
        return [Var(variable_name(node))]
    raise Unreadable(node, f"a {node.type} where words were expected")


def mentions(node: Node, name: str) -> bool:
    """Whether ``$name`` or ``@name`` occurs under ``node`` (names ignore case)."""
    return any(
        part.type == "variable" and text(part)[1:].lower() == name.lower() for part in walk(node)
    )


def assignment(node: Node) -> tuple[str, str, Node] | None:
    """``(name, operator, value)`` when ``node`` assigns a plain variable."""
    node = unwrap(node)
    if node.type != "assignment_expression":
        return None
    target = unwrap(child_of_type(node, "left_assignment_expression"))
    operator = child_of_type(node, "assignement_operator")  # sic, the grammar's spelling
    return variable_name(target), text(operator), field(node, "value")


def parameters(program: Node) -> dict[str, Parameter]:
    """The parameters of the script's ``param()`` block, by name."""
    block = child_of_type(program, "param_block")
    found: dict[str, Parameter] = {}
    for parameter in child_of_type(block, "parameter_list").named_children:
        if parameter.type != "script_parameter":
            continue
        kind: str | None = None
        choices: tuple[str, ...] | None = None
        default: tuple[Word, ...] | None = None
        for part in parameter.named_children:
            if part.type == "attribute_list":
                for attribute in part.named_children:
                    literal = [c for c in attribute.named_children if c.type == "type_literal"]
                    if literal:
                        kind = text(child_of_type(literal[0], "type_spec"))
                    elif text(child_of_type(attribute, "attribute_name")) == "ValidateSet":
                        arguments = child_of_type(attribute, "attribute_arguments")
                        choices = tuple(
                            str(word)
                            for argument in arguments.named_children
                            for word in words(only(argument.named_children, "argument"))
                        )
            elif part.type == "script_parameter_default":
                default = tuple(words(only(part.named_children, "default value")))
        found[variable_name(child_of_type(parameter, "variable"))] = Parameter(
            kind, default, choices
        )
    return found


def command_line(program: Node) -> CommandLine:
    """How the script builds ``$arguments`` and where it splats them, from its syntax tree.

    Every statement that touches ``$arguments`` must be understood here, so
    that the command line read is the whole command line.
    """
    steps: list[Step] = []
    invocations: list[Node] = []

    def visit(body: Node, when: str | None, each: tuple[str, str] | None) -> None:
        for statement in statements(body):
            node = unwrap(statement)
            assigned = assignment(node)
            if assigned is not None and assigned[0].lower() == "arguments":
                _, operator, value = assigned
                if operator == "=" and not steps and when is None and each is None:
                    steps.append(Step(tuple(words(value))))
                elif operator == "+=" and steps:
                    steps.append(Step(tuple(words(value)), when, each))
                else:
                    raise Unreadable(node, "an assignment of $arguments")
            elif not mentions(node, "arguments"):
                continue
            elif node.type == "if_statement":
                condition = unwrap(field(node, "condition"))
                if when is not None or condition.type != "variable":
                    raise Unreadable(node, "an `if` other than `if ($Switch)`")
                if node.child_by_field_name("else_clause") or node.child_by_field_name(
                    "elseif_clauses"
                ):
                    raise Unreadable(node, "an `if` with `else`")
                visit(
                    field(child_of_type(node, "statement_block"), "statement_list"),
                    variable_name(condition),
                    each,
                )
            elif node.type == "foreach_statement":
                item = child_of_type(node, "variable")
                collection = unwrap(child_of_type(node, "pipeline"))
                if each is not None or collection.type != "variable":
                    raise Unreadable(node, "a `foreach` other than over a variable")
                visit(
                    field(child_of_type(node, "statement_block"), "statement_list"),
                    when,
                    (variable_name(collection), variable_name(item)),
                )
            elif node.type == "try_statement":
                block = child_of_type(node, "statement_block")
                visit(field(block, "statement_list"), when, each)
                for handler in node.named_children:
                    if handler.type != "statement_block" and mentions(handler, "arguments"):
                        raise Unreadable(handler, "$arguments in a catch or finally block")
            elif node.type == "command":
                invocations.append(node)
            else:
                raise Unreadable(node, "a use of $arguments")

    visit(child_of_type(program, "statement_list"), None, None)
    return CommandLine(tuple(steps), tuple(invocations))


def render(line: CommandLine, values: Mapping[str, object]) -> list[str]:
    """The argv the script would pass to Python, given its parameters' values."""

    def value(word: Word, scope: Mapping[str, object]) -> str:
        if isinstance(word, str):
            return word
        found = scope[word.name]
        assert isinstance(found, str), f"${word.name} is not a string: {found!r}"
        return found

    argv: list[str] = []
    for step in line.steps:
        if step.when is not None and not values[step.when]:
            continue
        if step.each is None:
            argv += [value(word, values) for word in step.words]
            continue
        collection, item = step.each
        elements = values[collection]
        assert isinstance(elements, list | tuple)
        for element in elements:
            argv += [value(word, {**values, item: element}) for word in step.words]
    return argv


def unconditional(line: CommandLine) -> list[Word]:
    """The words added whatever the parameters' values."""
    always = [step for step in line.steps if step.when is None and step.each is None]
    return [word for step in always for word in step.words]


def after(line: Sequence[Word], flag: str) -> list[Word]:
    """The word after each occurrence of ``flag`` in ``line``."""
    return [line[i + 1] for i, word in enumerate(line[:-1]) if word == flag]


# COMPLIANCE-012: the scripts exist and parse


def test_COMPLIANCE_012_every_entry_point_exists() -> None:
    present = {path.name for path in SCRIPTS.glob("*.ps1")}
    assert set(ENTRY_POINTS) <= present


@pytest.mark.parametrize("script", sorted(p.name for p in SCRIPTS.glob("*.ps1")))
def test_COMPLIANCE_012_script_parses_without_error_or_missing_nodes(script: str) -> None:
    assert syntax_errors(read(script)) == []


@pytest.mark.parametrize(
    ("snippet", "expected"),
    [
        ("$arguments = @('-m', 'orchestration'", "cannot parse"),  # unclosed @(
        ("param([string]$Root = '.'\nexit $LASTEXITCODE", "cannot parse"),  # unclosed param(
        ("if ($VerboseOutput) { $arguments += '--verbose' ", "missing '}'"),
    ],
)
def test_COMPLIANCE_012_a_broken_script_is_reported(snippet: str, expected: str) -> None:
    """The parse check can fail: broken PowerShell yields located ERROR or MISSING nodes."""
    errors = syntax_errors(parse(snippet.encode()))
    assert errors
    assert any(expected in error for error in errors), errors


# COMPLIANCE-012: parameters and help

COMMON_PARAMETERS = {
    "VerboseOutput": Parameter("switch", None, None),
    "Root": Parameter("string", (".",), None),
    "Format": Parameter("string", ("text",), FORMATS),
}


@pytest.mark.parametrize("script", ENTRY_POINTS)
def test_COMPLIANCE_012_script_declares_verbose_output_root_and_format(script: str) -> None:
    program = read(script)
    expected = dict(COMMON_PARAMETERS)
    if script == MASTER:  # also: which sections, each passed as --section
        expected["Section"] = Parameter("string[]", (), None)
    assert parameters(program) == expected
    block = child_of_type(program, "param_block")
    bindings = [
        attribute
        for attribute_list in block.named_children
        if attribute_list.type == "attribute_list"
        for attribute in attribute_list.named_children
        if attribute.type == "attribute"
        and text(child_of_type(attribute, "attribute_name")) == "CmdletBinding"
    ]
    assert len(bindings) == 1, "[CmdletBinding()] before param()"


@pytest.mark.parametrize("script", ENTRY_POINTS)
def test_COMPLIANCE_012_script_has_comment_based_help(script: str) -> None:
    program = read(script)
    first = program.named_children[0]
    assert first.type == "comment"
    help_text = text(first)
    assert help_text.startswith("<#")
    keywords = [".SYNOPSIS", ".DESCRIPTION", ".EXAMPLE"]
    keywords += [f".PARAMETER {name}" for name in parameters(program)]
    assert [keyword for keyword in keywords if keyword not in help_text] == []


# COMPLIANCE-012: a thin wrapper that exits with the validator's code


@pytest.mark.parametrize("script", ENTRY_POINTS)
def test_COMPLIANCE_012_script_is_a_thin_wrapper_exiting_with_the_validator_code(
    script: str,
) -> None:
    program = read(script)
    body = statements(child_of_type(program, "statement_list"))
    strict = unwrap(body[0])
    assert strict.type == "command"
    assert text(strict).split() == ["Set-StrictMode", "-Version", "Latest"]
    assigned = {
        found[0]: (found[1], unwrap(found[2]))
        for found in map(assignment, body)
        if found is not None
    }
    assert "ErrorActionPreference" in assigned
    assert words(assigned["ErrorActionPreference"][1]) == ["Stop"]

    # $python = if ($env:ORCHESTRATION_PYTHON) { $env:ORCHESTRATION_PYTHON } else { 'python' }
    operator, choice = assigned["python"]
    assert (operator, choice.type) == ("=", "if_statement")
    assert unwrap(field(choice, "condition")).type == "variable"
    assert words(field(choice, "condition")) == [Var("env:ORCHESTRATION_PYTHON")]
    then = field(child_of_type(choice, "statement_block"), "statement_list")
    otherwise = field(
        child_of_type(field(choice, "else_clause"), "statement_block"), "statement_list"
    )
    assert [w for s in statements(then) for w in words(s)] == [Var("env:ORCHESTRATION_PYTHON")]
    assert [w for s in statements(otherwise) for w in words(s)] == ["python"]

    # & $python @arguments, inside a try whose catch exits 2
    invocation = only(command_line(program).invocations, "invocation of @arguments")
    assert text(child_of_type(invocation, "command_invokation_operator")) == "&"
    assert text(field(invocation, "command_name")) == "$python"
    splat = field(invocation, "command_elements").named_children
    assert [part.type for part in splat] == ["command_argument_sep", "array_literal_expression"]
    assert text(splat[1]) == "@arguments"
    guard = invocation.parent
    while guard is not None and guard.type != "try_statement":
        guard = guard.parent
    assert guard is not None, "the invocation runs inside try { }"
    handler = child_of_type(child_of_type(guard, "catch_clauses"), "catch_clause")
    assert "CommandNotFoundException" in text(child_of_type(handler, "catch_type_list"))
    last_in_handler = statements(field(child_of_type(handler, "statement_block"), "statement_list"))
    assert last_in_handler[-1].type == "flow_control_statement"
    assert text(last_in_handler[-1]).split() == ["exit", "2"]

    # exit $LASTEXITCODE ends the script
    last = body[-1]
    assert last.type == "flow_control_statement"
    assert text(last).split()[0] == "exit"
    code = unwrap(child_of_type(last, "pipeline"))
    assert (code.type, text(code)) == ("variable", "$LASTEXITCODE")

    # No checks in PowerShell: the only commands are these.
    commands = [node for node in walk(program) if node.type == "command"]
    names = sorted(text(field(command, "command_name")) for command in commands)
    assert names == ["$python", "Set-StrictMode", "Write-Error"]


# COMPLIANCE-012: each parameter reaches the right flag


@pytest.mark.parametrize("script", ENTRY_POINTS)
def test_COMPLIANCE_012_each_parameter_reaches_its_flag(script: str) -> None:
    line = command_line(read(script))
    always = unconditional(line)
    assert always[:2] == ["-m", "orchestration"]
    assert "validate" in always
    command = always.index("validate")
    # --root is an option of the top-level group: before the command.
    assert after(always, "--root") == [Var("Root")]
    assert always.index(Var("Root")) < command
    assert after(always, "--format") == [Var("Format")]
    assert always.index(Var("Format")) > command
    assert always.count(Var("Root")) == always.count(Var("Format")) == 1

    conditional = [step for step in line.steps if step.when is not None]
    assert conditional == [Step(("--verbose",), when="VerboseOutput")]
    assert "--verbose" not in always

    repeated = [step for step in line.steps if step.each is not None]
    if script == MASTER:
        assert "--section" not in always  # every section unless -Section names some
        assert repeated == [Step(("--section", Var("prefix")), each=("Section", "prefix"))]
    else:
        assert after(always, "--section") == [SECTION_OF[script]]
        assert always.index("--section") > command
        assert repeated == []


@pytest.mark.parametrize("script", ENTRY_POINTS)
def test_COMPLIANCE_012_rendered_command_line_for_sample_values(script: str) -> None:
    line = command_line(read(script))
    quiet = {"Root": "R", "Format": "junit", "VerboseOutput": False, "Section": []}
    loud = {**quiet, "VerboseOutput": True, "Section": ["STATE-OBS", "ERR-FM"]}
    section = ["--section", SECTION_OF[script]] if script != MASTER else []
    expected = ["-m", "orchestration", "--root", "R", "validate", *section, "--format", "junit"]
    assert render(line, quiet) == expected
    chosen = ["--section", "STATE-OBS", "--section", "ERR-FM"] if script == MASTER else []
    assert render(line, loud) == [*expected, *chosen, "--verbose"]


# COMPLIANCE-012: the command line works with the real Python CLI


@pytest.mark.parametrize(
    ("script", "sections"),
    [*((script, ()) for script in ENTRY_POINTS), (MASTER, ("TASK-DEF", "ERR-FM"))],
)
def test_COMPLIANCE_012_command_line_runs_the_python_validator(
    script: str, sections: tuple[str, ...], tmp_path: Path
) -> None:
    """The argv read from the script is accepted by ``python -m orchestration``.

    The process runs in an empty folder, so only ``--root`` can lead it to
    the repository's pipeline; exit 2 would be a usage error such as a
    renamed flag, 3 a crash.
    """
    line = command_line(read(script))
    values = {"Root": str(REPO), "Format": "json", "VerboseOutput": True, "Section": sections}
    argv = render(line, values)
    done = subprocess.run(
        [sys.executable, *argv],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert done.returncode in (0, 1), f"{argv} exited {done.returncode}:\n{done.stderr}"
    json.loads(done.stdout)  # --format json reached the validator


# COMPLIANCE-012: the README


def test_COMPLIANCE_012_readme_documents_every_entry_point() -> None:
    readme = (SCRIPTS / "README.md").read_text(encoding="utf-8")
    missing = [script for script in ENTRY_POINTS if script not in readme]
    missing += [f"--section {s}" for s in SECTION_OF.values() if f"--section {s}" not in readme]
    missing += [p for p in ("-VerboseOutput", "-Root", "-Format") if p not in readme]
    missing += [f for f in ("python -m orchestration", "ORCHESTRATION_PYTHON") if f not in readme]
    assert missing == []


# COMPLIANCE-013: the workflow


def test_COMPLIANCE_013_workflow_validates_every_push_and_pull_request() -> None:
    workflow = yaml.safe_load((REPO / ".github" / "workflows" / "compliance.yml").read_text())
    triggers = workflow.get("on", workflow.get(True))  # YAML 1.1 reads a bare `on` as True
    assert {"push", "pull_request"} <= set(triggers)
    steps = [step for job in workflow["jobs"].values() for step in job["steps"]]
    runs = [" ".join(step.get("run", "").split()) for step in steps]
    assert any(run == "python -m orchestration validate --format github" for run in runs)
    assert any(
        "pwsh" in run and "scripts/validate/validate_compliance.ps1 -Format github" in run
        for run in runs
    )
    pythons = [
        step["with"]["python-version"] for step in steps if "setup-python" in step.get("uses", "")
    ]
    assert pythons == ["3.11"]
