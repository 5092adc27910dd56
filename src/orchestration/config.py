"""Configuration: ``orchestration.yaml`` at the pipeline root, overridden by ``ORCHESTRATOR_*``.

Stability: stable (the keys, their defaults and their variables).

Each key is resolved from, in order of precedence (EXEC-DOC-013): the
environment variable ``ORCHESTRATOR_`` + the upper-cased key path joined with
underscores, then ``orchestration.yaml``, then the built-in default.

====================================  =========  =================================================
Key                                   Default    Environment variable
====================================  =========  =================================================
``server.host``                       127.0.0.1  ``ORCHESTRATOR_SERVER_HOST``
``server.port``                       8000       ``ORCHESTRATOR_SERVER_PORT``
``leases.ttl_seconds``                20         ``ORCHESTRATOR_LEASES_TTL_SECONDS``
``leases.sweep_interval_seconds``     5          ``ORCHESTRATOR_LEASES_SWEEP_INTERVAL_SECONDS``
``retry.base_seconds``                1          ``ORCHESTRATOR_RETRY_BASE_SECONDS``
``retry.max_seconds``                 300        ``ORCHESTRATOR_RETRY_MAX_SECONDS``
``run.max_workers``                   CPUs       ``ORCHESTRATOR_RUN_MAX_WORKERS``
``audit.retention_days``              90         ``ORCHESTRATOR_AUDIT_RETENTION_DAYS``
``audit.segment_max_bytes``           67108864   ``ORCHESTRATOR_AUDIT_SEGMENT_MAX_BYTES``
``audit.tool_audit_max_bytes``        104857600  ``ORCHESTRATOR_AUDIT_TOOL_AUDIT_MAX_BYTES``
``state.backups``                     10         ``ORCHESTRATOR_STATE_BACKUPS``
``daemon.serve``                      false      ``ORCHESTRATOR_DAEMON_SERVE``
``daemon.restart_base_seconds``       1          ``ORCHESTRATOR_DAEMON_RESTART_BASE_SECONDS``
``daemon.restart_max_seconds``        60         ``ORCHESTRATOR_DAEMON_RESTART_MAX_SECONDS``
``daemon.poll_seconds``               2          ``ORCHESTRATOR_DAEMON_POLL_SECONDS``
``daemon.drain_seconds``              5          ``ORCHESTRATOR_DAEMON_DRAIN_SECONDS``
``notifications.webhooks``            []         ``ORCHESTRATOR_NOTIFICATIONS_WEBHOOKS``
``notifications.retries``             5          ``ORCHESTRATOR_NOTIFICATIONS_RETRIES``
``notifications.retry_base_seconds``  1          ``ORCHESTRATOR_NOTIFICATIONS_RETRY_BASE_SECONDS``
``notifications.timeout_seconds``     5          ``ORCHESTRATOR_NOTIFICATIONS_TIMEOUT_SECONDS``
====================================  =========  =================================================

A list (``notifications.webhooks``) is a YAML sequence in the file; its
variable holds the URLs separated by commas or spaces, or a flow sequence
(``[https://a.example/hook, https://b.example/hook]``, JSON included).

``ORCHESTRATOR_JWT_SECRET`` is read only from the environment: a secret in the
file is an error (EXEC-DOC-013). An invalid value, an unknown key or an
unknown ``ORCHESTRATOR_*`` variable is a :class:`ConfigError` (exit 2) listing
every problem with its source: the file's line and column, or the variable
(EXEC-DOC-014). ``docs/operations/CONFIGURATION.md`` is the reference; a test
keeps it listing every key of :meth:`Config.documented`.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Annotated, Any, ClassVar, NamedTuple

import annotated_types
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, ValidationError
from pydantic.fields import FieldInfo

from .errors import DefinitionError, Problem, UsageError
from .state.store import BACKUPS, SEGMENT_MAX_BYTES

__all__ = [
    "CONFIG_FILE",
    "ENVIRONMENT",
    "PREFIX",
    "REFERENCE",
    "SECRET_VARIABLE",
    "AuditConfig",
    "Config",
    "ConfigError",
    "DaemonConfig",
    "LeasesConfig",
    "NotificationsConfig",
    "RetryConfig",
    "RunConfig",
    "ServerConfig",
    "Setting",
    "StateConfig",
    "load_config",
    "variable_of",
]

CONFIG_FILE = "orchestration.yaml"
PREFIX = "ORCHESTRATOR_"
SECRET_VARIABLE = "ORCHESTRATOR_JWT_SECRET"
REFERENCE = "docs/operations/CONFIGURATION.md"
# ORCHESTRATOR_* variables that are not configuration keys, so never "unknown".
_NOT_KEYS = frozenset({SECRET_VARIABLE, "ORCHESTRATOR_CRASH_POINT"})  # faults.py: crash tests
_DEFAULT_TEXT = {"run.max_workers": "number of CPUs"}  # defaults that are not a constant
_INVALID = "EXEC-DOC-014"
_SECRET_RULE = "EXEC-DOC-013"
_Locate = Callable[[str, str, str, str], Problem]  # YamlSource.problem


class ConfigError(DefinitionError, UsageError):
    """The configuration is invalid; ``problems`` lists every problem, each with its source.

    A :class:`UsageError` (exit 2, EXEC-DOC-014) that carries located problems
    like a :class:`DefinitionError`, so the CLI lists them, as text or as JSON,
    the way it lists the problems of invalid task files.
    """

    exit_code: ClassVar[int] = 2

    def __init__(self, problems: Iterable[Problem]) -> None:
        super().__init__(tuple(problems))
        count = len(self.problems)
        lines = "\n".join(problem.render() for problem in self.problems)
        self.args = (
            f"{count} problem{'s' if count != 1 else ''} in the configuration "
            f"({CONFIG_FILE} and {PREFIX}* variables):\n{lines}",
        )


class _Section(BaseModel):
    # Strict: a quoted "8000" in the file is a mistake worth naming (an int is still
    # accepted where a number of seconds is expected). Variables are parsed from text.
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True, allow_inf_nan=False)


class ServerConfig(_Section):
    """``server``: where ``orchestration serve`` listens."""

    host: str = Field(
        default="127.0.0.1", min_length=1, description="Address the API server binds to."
    )
    port: int = Field(default=8000, ge=1, le=65535, description="TCP port of the API server.")


class LeasesConfig(_Section):
    """``leases``: how long a claim lives without a heartbeat, and how often expiry is checked."""

    ttl_seconds: float = Field(
        default=20.0, gt=0, description="A lease not renewed by a heartbeat for this long expires."
    )
    sweep_interval_seconds: float = Field(
        default=5.0, gt=0, description="How often `run` looks for other runners' expired leases."
    )


class RetryConfig(_Section):
    """``retry``: the exponential backoff between attempts of a retried task (ERR-FM-005)."""

    base_seconds: float = Field(default=1.0, gt=0, description="Backoff before the first retry.")
    max_seconds: float = Field(
        default=300.0, gt=0, description="The longest backoff, however many retries."
    )


class RunConfig(_Section):
    """``run``: defaults of ``orchestration run``."""

    max_workers: int | None = Field(
        default=None,
        ge=1,
        description="Attempts run at once when `--max-workers` is not given; unset: one local "
        "worker per CPU, or every free declared worker.",
    )


class AuditConfig(_Section):
    """``audit``: retention and rotation of the audit trail (AUDIT-001)."""

    retention_days: int = Field(
        default=90, ge=1, description="Sealed segments older than this are moved to the archive."
    )
    segment_max_bytes: int = Field(
        default=SEGMENT_MAX_BYTES,
        ge=1,
        description="The live journal is sealed into a segment past this size.",
    )
    tool_audit_max_bytes: int = Field(
        default=104857600,
        ge=1,
        description="`tool_audit.jsonl` is sealed into a segment past this size.",
    )


class StateConfig(_Section):
    """``state``: the runtime state folder ``.state/``."""

    backups: int = Field(
        default=BACKUPS,
        ge=0,
        description="Rotating copies of the snapshot kept in `.state/backups/`.",
    )


class DaemonConfig(_Section):
    """``daemon``: what ``orchestration daemon`` supervises, and how (OBS-010, OBS-011)."""

    serve: bool = Field(
        default=False,
        description="Whether the daemon also runs `orchestration serve` (which needs "
        "ORCHESTRATOR_JWT_SECRET).",
    )
    restart_base_seconds: float = Field(
        default=1.0, gt=0, description="Backoff before restarting a crashed child process."
    )
    restart_max_seconds: float = Field(
        default=60.0, gt=0, description="The longest backoff between restarts of a child."
    )
    poll_seconds: float = Field(
        default=2.0, gt=0, description="How often the daemon looks for new work once `run` ended."
    )
    drain_seconds: float = Field(
        default=5.0,
        ge=0,
        le=8,
        description="On SIGTERM, how long running attempts may finish before they are stopped.",
    )


_Webhook = Annotated[str, StringConstraints(pattern=r"^https?://[^\s,]+$")]


class NotificationsConfig(_Section):
    """``notifications``: where task failures and run completions are POSTed (OBS-012)."""

    webhooks: list[_Webhook] = Field(
        default=[], description="URLs each notification is POSTed to as JSON."
    )
    retries: int = Field(
        default=5, ge=0, description="Retries of a failed delivery, with exponential backoff."
    )
    retry_base_seconds: float = Field(
        default=1.0, gt=0, description="Backoff before the first retry of a delivery."
    )
    timeout_seconds: float = Field(
        default=5.0, gt=0, description="How long one delivery may take before it failed."
    )


class Setting(NamedTuple):
    """One key of the configuration, as the reference documents it."""

    key: str  # dotted, e.g. "leases.ttl_seconds"
    variable: str  # e.g. "ORCHESTRATOR_LEASES_TTL_SECONDS"
    kind: str  # e.g. "integer, >= 1, <= 65535"
    default: str  # as written in the file, e.g. "20"
    description: str


class Config(BaseModel):
    """The resolved configuration of a pipeline (see the module docstring for the keys).

    ``jwt_secret`` is ``ORCHESTRATOR_JWT_SECRET``, ``None`` when unset; it never
    comes from the file and is left out of ``repr``.
    """

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    SECTIONS: ClassVar[dict[str, type[_Section]]] = {
        "server": ServerConfig,
        "leases": LeasesConfig,
        "retry": RetryConfig,
        "run": RunConfig,
        "audit": AuditConfig,
        "state": StateConfig,
        "daemon": DaemonConfig,
        "notifications": NotificationsConfig,
    }

    server: ServerConfig = ServerConfig()
    leases: LeasesConfig = LeasesConfig()
    retry: RetryConfig = RetryConfig()
    run: RunConfig = RunConfig()
    audit: AuditConfig = AuditConfig()
    state: StateConfig = StateConfig()
    daemon: DaemonConfig = DaemonConfig()
    notifications: NotificationsConfig = NotificationsConfig()
    jwt_secret: str | None = Field(default=None, repr=False, exclude=True)

    @classmethod
    def documented(cls) -> tuple[Setting, ...]:
        """Every key of ``orchestration.yaml`` with its variable, type, default and meaning."""
        return tuple(
            Setting(
                key := f"{section}.{name}",
                variable_of(key),
                _kind(info),
                _DEFAULT_TEXT.get(key) or _text(info.default),
                info.description or "",
            )
            for section, model in cls.SECTIONS.items()
            for name, info in model.model_fields.items()
        )

    def value(self, key: str) -> Any:
        """The value of a dotted key, e.g. ``config.value("server.port")``."""
        section, _, name = key.partition(".")
        return getattr(getattr(self, section), name)


def variable_of(key: str) -> str:
    """The variable overriding a dotted key: ``server.port`` → ``ORCHESTRATOR_SERVER_PORT``."""
    return PREFIX + key.replace(".", "_").upper()


def load_config(root: Path, environ: Mapping[str, str] | None = None) -> Config:
    """Resolve the configuration of the pipeline at ``root``.

    Args:
        root: the pipeline root; ``root/orchestration.yaml`` is optional, and may be empty.
        environ: the environment to read ``ORCHESTRATOR_*`` from (default ``os.environ``).

    Raises:
        ConfigError: every invalid value, unknown key or unknown variable, and any
            secret in the file, each located (exit 2).
    """
    environ = os.environ if environ is None else environ
    in_file: list[Problem] = []
    from_file = _read_file(root / CONFIG_FILE, in_file)
    problems = sorted(in_file, key=lambda problem: (problem.line, problem.column))
    from_env = _read_environment(environ, problems)
    if problems:
        raise ConfigError(problems)
    sections = {
        section: model.model_validate({**from_file.get(section, {}), **from_env.get(section, {})})
        for section, model in Config.SECTIONS.items()
    }
    return Config.model_validate({**sections, "jwt_secret": environ.get(SECRET_VARIABLE)})


# --- the file ---------------------------------------------------------------------------


def _read_file(path: Path, problems: list[Problem]) -> dict[str, dict[str, Any]]:
    """Valid values of the file by section; what is wrong goes to ``problems``."""
    from .lifecycles.source import pointer_of, read_yaml

    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return {}
    except OSError as bad:
        problems.append(
            Problem(
                CONFIG_FILE,
                f"cannot read the configuration: {bad.strerror or bad}",
                "make it a readable file, or remove it to use the defaults",
                _INVALID,
            )
        )
        return {}
    source, found = read_yaml(raw, CONFIG_FILE, _INVALID)
    problems.extend(found)
    if source is None or source.data is None:
        return {}
    data = source.data
    if not isinstance(data, dict):
        problems.append(
            source.problem(
                f"{CONFIG_FILE} holds a {_kind_of(data)}, not a mapping of sections",
                "write sections with keys under them, e.g. `server:` then `  port: 8000`; "
                f"the keys are in {REFERENCE}",
                _INVALID,
            )
        )
        return {}
    values: dict[str, dict[str, Any]] = {}
    for section, body in data.items():
        where = pointer_of(str(section))
        if _is_secret(section):
            problems.append(_secret_in_file(source.problem, str(section), where))
            continue
        model = Config.SECTIONS.get(section) if isinstance(section, str) else None
        if model is None:
            problems.append(_unknown_key(source.problem, [str(section)], where))
            continue
        if body is None:  # `server:` with nothing under it
            continue
        if not isinstance(body, dict):
            problems.append(
                source.problem(
                    f"section {section!r} is {body!r}, not a mapping of keys",
                    f"indent its keys under it, e.g. `{section}:` then "
                    f"`  {next(iter(model.model_fields))}: ...`",
                    _INVALID,
                    where,
                )
            )
            continue
        known: dict[str, Any] = {}
        for name, value in body.items():
            at = where + pointer_of(str(name))
            if _is_secret(name):
                problems.append(_secret_in_file(source.problem, f"{section}.{name}", at))
            elif isinstance(name, str) and name in model.model_fields:
                known[name] = value
            else:
                problems.append(_unknown_key(source.problem, [section, str(name)], at))
        for name, message in _invalid(model, known, strict=True).items():
            setting = _setting(f"{section}.{name}")
            value = known.pop(name)
            quoted = isinstance(value, str) and not _invalid(model, {name: value}, strict=False)
            problems.append(
                source.problem(
                    f"{setting.key} is {value!r}: {message}",
                    f"write it without quotes: `{name}: {value}`"
                    if quoted
                    else f"set it to {setting.kind}, or remove it for the default "
                    f"{setting.default}",
                    _INVALID,
                    where + pointer_of(name),
                )
            )
        values[section] = known
    return values


def _secret_in_file(locate: _Locate, key: str, pointer: str) -> Problem:
    return locate(
        f"key {key!r} holds a secret in {CONFIG_FILE}; secrets are read only from the environment",
        f"remove it from the file (and from its history) and export {SECRET_VARIABLE} instead",
        _SECRET_RULE,
        pointer,
    )


def _unknown_key(locate: _Locate, path: list[str], pointer: str) -> Problem:
    key = ".".join(path)
    guesses = _guess_keys(path)
    if guesses:
        hint = f"did you mean {' or '.join(map(repr, guesses))}?"
    elif len(path) == 2:
        names = ", ".join(Config.SECTIONS[path[0]].model_fields)
        hint = f"remove it; the keys of {path[0]!r} are {names}"
    else:
        hint = f"remove it; the sections are {', '.join(Config.SECTIONS)}"
    return locate(
        f"unknown key {key!r} in {CONFIG_FILE}", f"{hint} (see {REFERENCE})", _INVALID, pointer
    )


def _guess_keys(path: list[str]) -> list[str]:
    """Known keys (or sections) the unknown ``path`` was probably meant to be."""
    keys = list(_SETTINGS)
    if len(path) == 2 and path[0] in Config.SECTIONS:
        section, name = path
        fields = list(Config.SECTIONS[section].model_fields)
        near = _near(name, fields)
        if near:
            return [f"{section}.{field}" for field in near]
    name = path[-1]
    if len(path) == 1:
        near = _near(name, list(Config.SECTIONS), cutoff=0.7)
        if near:
            return near
    by_leaf = {key.partition(".")[2]: key for key in keys}
    if name in by_leaf:  # the right key in the wrong section: no need for look-alikes
        return [by_leaf[name]]
    return [by_leaf[leaf] for leaf in _near(name, list(by_leaf))]


# --- the environment --------------------------------------------------------------------


def _read_environment(
    environ: Mapping[str, str], problems: list[Problem]
) -> dict[str, dict[str, Any]]:
    """Valid values of the ``ORCHESTRATOR_*`` variables by section, parsed from text."""
    given: dict[str, dict[str, str]] = {}
    for variable in sorted(environ):
        if not variable.startswith(PREFIX) or variable in _NOT_KEYS:
            continue
        key = ENVIRONMENT.get(variable)
        if key is None:
            choices = [*ENVIRONMENT, SECRET_VARIABLE]
            suffixes = {name.removeprefix(PREFIX): name for name in choices}
            guesses = [suffixes[s] for s in _near(variable.removeprefix(PREFIX), list(suffixes))]
            hint = f"did you mean {' or '.join(guesses)}?" if guesses else "unset it"
            problems.append(
                Problem(
                    "environment",
                    f"unknown variable {variable}: no configuration key is named by it",
                    f"{hint} (the variables are listed in {REFERENCE})",
                    _INVALID,
                )
            )
            continue
        section, _, name = key.partition(".")
        given.setdefault(section, {})[name] = environ[variable]
    values: dict[str, dict[str, Any]] = {}
    for section, texts in given.items():
        model = Config.SECTIONS[section]
        parsed_texts = {name: _from_text(model, name, text) for name, text in texts.items()}
        bad = _invalid(model, parsed_texts, strict=False)
        for name, message in bad.items():
            setting = _setting(f"{section}.{name}")
            problems.append(
                Problem(
                    "environment",
                    f"{setting.variable}={texts[name]!r} ({setting.key}): {message}",
                    f"set it to {setting.kind}, or unset it for the value of {CONFIG_FILE} "
                    f"or the default {setting.default}",
                    _INVALID,
                )
            )
        good = {name: value for name, value in parsed_texts.items() if name not in bad}
        parsed = model.model_validate(good, strict=False)
        values[section] = {name: getattr(parsed, name) for name in good}
    return values


def _from_text(model: type[_Section], name: str, text: str) -> Any:
    """A variable's text as the field wants it: a list field's items are split out."""
    if not _is_list(model.model_fields[name]):
        return text
    if text.lstrip().startswith("["):  # a flow sequence, JSON included
        import yaml

        try:
            return yaml.safe_load(text)
        except yaml.YAMLError:
            return text  # reported as not a valid list
    return [item for item in text.replace(",", " ").split() if item]


def _is_list(info: FieldInfo) -> bool:
    return getattr(info.annotation, "__origin__", None) is list


# --- shared -----------------------------------------------------------------------------


def _invalid(model: type[_Section], values: Mapping[str, Any], *, strict: bool) -> dict[str, str]:
    """Field → what is wrong with its value, for each invalid value of one section."""
    wrong: dict[str, str] = {}
    try:
        model.model_validate(values, strict=strict)
    except ValidationError as error:
        for detail in error.errors(include_url=False):
            name = str(detail["loc"][0]) if detail["loc"] else ""
            message = detail["msg"]
            wrong.setdefault(name, message[:1].lower() + message[1:])
    return wrong


def _near(name: str, choices: list[str], cutoff: float = 0.75) -> list[str]:
    """Choices spelled like ``name``, or holding it as whole words (``port`` → ``server_port``)."""
    lowered = {choice.lower(): choice for choice in choices}
    close = difflib.get_close_matches(name.lower(), list(lowered), n=3, cutoff=cutoff)
    words = f"_{name.lower().replace('.', '_')}_"
    holding = [c for c in lowered if words in f"_{c.replace('.', '_')}_"]
    return [lowered[c] for c in dict.fromkeys(close + holding)][:3]


def _is_secret(name: object) -> bool:
    return isinstance(name, str) and any(word in name.lower() for word in ("secret", "jwt"))


def _setting(key: str) -> Setting:
    return _SETTINGS[key]


def _kind(info: FieldInfo) -> str:
    """The type and bounds of a field, for people: ``an integer from 1 to 65535``."""
    if _is_list(info):
        return "a list of http(s) URLs"
    if info.annotation is bool:
        return "a boolean"
    names = {int: "an integer", float: "a number", str: "a string"}
    annotation = info.annotation
    base = next((t for t in names if annotation is t or annotation == t | None), str)
    bounds: dict[str, Any] = {}
    for bound in info.metadata:
        if isinstance(bound, annotated_types.Gt):
            bounds["gt"] = bound.gt
        elif isinstance(bound, annotated_types.Ge):
            bounds["ge"] = bound.ge
        elif isinstance(bound, annotated_types.Le):
            bounds["le"] = bound.le
        elif isinstance(bound, annotated_types.MinLen):
            return "a non-empty string"
    if "ge" in bounds and "le" in bounds:
        return f"{names[base]} from {bounds['ge']} to {bounds['le']}"
    if "gt" in bounds:
        return f"{names[base]} greater than {bounds['gt']}"
    if "ge" in bounds:
        return f"{names[base]} of at least {bounds['ge']}"
    return names[base]


def _text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value)


def _kind_of(data: object) -> str:
    if isinstance(data, list):
        return "list"
    return "string" if isinstance(data, str) else type(data).__name__


# Built last: the table needs the helpers above.
_SETTINGS = {setting.key: setting for setting in Config.documented()}
ENVIRONMENT: Mapping[str, str] = {s.variable: s.key for s in _SETTINGS.values()}
"""Environment variable → the dotted key it overrides."""
