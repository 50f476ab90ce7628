"""Typed shape of the runbook data. Unknown keys are errors; every mapping knows its Loc."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any, Literal, get_origin

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, field_validator, model_validator
from pydantic.json_schema import SkipJsonSchema

from runbook.data import placeholders
from runbook.errors import Loc

Severity = Literal["critical", "high", "medium", "low"]
SEVERITIES: tuple[Severity, ...] = ("critical", "high", "medium", "low")
Slug = Annotated[str, Field(pattern=r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")]
Ident = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$")]
Number = int | float
# Seconds a command may run in the gate unless its data says otherwise.
DEFAULT_TIMEOUT = 30.0
# The most seconds a command may be given (data and hand-written annotations alike).
MAX_TIMEOUT = 120
# A value that is either literal or one `{placeholder}` naming an environment value.
Threshold = Number | Annotated[str, Field(pattern=r"^\{[a-z][a-z0-9_]*\}$")]


class Node(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True, frozen=True)
    anchor: SkipJsonSchema[Any] = Field(default=None, alias="__loc__", exclude=True, repr=False)

    @property
    def loc(self) -> Loc | None:
        return self.anchor.loc if self.anchor is not None else None

    def loc_of(self, *sub: str | int) -> Loc | None:
        """Position of one of this node's keys or items (falls back to the node's own)."""
        return self.anchor.at(*sub) if self.anchor is not None else None

    @model_validator(mode="before")
    @classmethod
    def _plain_dicts(cls, data: Any) -> Any:
        """Mappings typed as dict (not models) do not carry the loader's position entry."""
        if isinstance(data, dict):
            for name, info in cls.model_fields.items():
                value = data.get(name)
                if isinstance(value, dict) and get_origin(info.annotation) is dict:
                    data = {**data, name: {k: v for k, v in value.items() if k != "__loc__"}}
        return data


# ---------------------------------------------------------------- environments


class Environment(Node):
    name: Slug
    title: str
    account: Annotated[str, Field(pattern=r"^\d{12}$")]
    region: Annotated[str, Field(pattern=r"^[a-z]{2}(-[a-z]+)+-\d$")]
    # Values that differ per environment; every environment declares the same keys.
    values: dict[Ident, str | Number] = {}
    # SNS topic name (in this environment's account and region) notified per severity.
    alarm_topics: dict[Severity, str]
    # The environment a fresh reader's commands are for (exactly one has it).
    default: bool = False
    # Production: its commands stand out wherever it is chosen.
    production: bool = False


class EnvironmentsFile(Node):
    environments: Annotated[list[Environment], Field(min_length=1)]


# ---------------------------------------------------------------- inventory and inputs

ResourceType = Literal[
    "lambda_function",
    "dynamodb_table",
    "sqs_queue",
    "log_group",
    "http_api",
    "secret",
    "canary",
    "s3_bucket",
    "cloudfront_distribution",
    "sns_topic",
    "dashboard",
]


class Resource(Node):
    type: ResourceType
    name: str  # pattern with environment placeholders, e.g. kanjona-{env}-lead-handler
    description: str = ""


class InventoryFile(Node):
    resources: dict[Ident, Resource]


class OperatorInput(Node):
    """A value only the person on call knows; shown as <name> with how to find it."""

    description: str
    how_to_find: str
    # What the verification gate substitutes: a value that exists in the seeded world.
    sample: str


class InputsFile(Node):
    inputs: dict[Slug, OperatorInput]


# ---------------------------------------------------------------- commands and content


class Command(Node):
    """One copy-paste block: shell (bash) or python (boto3)."""

    caption: str = ""
    shell: str | None = None
    python: str | None = None
    # JMESPath expressions that must be non-empty in the command's JSON output.
    expect: list[str] = []
    # The command is right but moto falls short: the gate expects it to fail, for this reason.
    xfail: str | None = None
    # The gate does not run this block, for this reason (printed in its report).
    skip: str | None = None
    stream: bool = False
    timeout: Annotated[float, Field(gt=0, le=MAX_TIMEOUT)] = DEFAULT_TIMEOUT
    # Changes state; None lets the IAM access levels of its API calls decide (runbook.access).
    # Given, it must agree with them.
    mutates: bool | None = None
    # A shell command that puts back what this one changed: shown in the caution box, run by
    # the gate right after the command, which checks that the state is as before.
    undo: str | None = None
    # Environments the command applies to (empty: all), e.g. a restore that only prod supports.
    only: list[Slug] = []
    # The command deliberately uses a form only GNU (Linux) tools take, for this reason: the
    # portability check (runbook.data.portable) lets it pass. Without it, such a form is an error.
    gnu_only: str | None = None

    @field_validator("shell", "python", "undo")
    @classmethod
    def _not_blank(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("code must not be empty")
        return v

    @field_validator("gnu_only")
    @classmethod
    def _reason(cls, v: str | None) -> str | None:
        if v is not None and not v.strip():
            raise ValueError("give the reason the command cannot be written for both GNU and BSD/macOS")
        return v

    @property
    def lang(self) -> str:
        return "python" if self.python is not None else "bash"

    @property
    def code(self) -> str:
        return (self.python if self.python is not None else self.shell) or ""


class Step(Node):
    text: str
    details: list[str] = []
    commands: list[Command] = []


class TextBlock(Node):
    text: str


class ListBlock(Node):
    items: list[str]
    numbered: bool = False


class StepsBlock(Node):
    steps: list[Step]


class CommandBlock(Node):
    command: Command


class CodeBlock(Node):
    """Example code that is not a runbook command (another language, a header)."""

    code: str
    lang: str = "text"
    caption: str = ""
    # Why the gate cannot run it; printed in its report.
    reason: str


class TableBlock(Node):
    columns: list[str]
    rows: list[list[str]]


class EnvColumn(Node):
    title: str
    value: str


class EnvTableBlock(Node):
    """A table with one row per environment: grows by itself when an environment is added."""

    env_table: list[EnvColumn]


class AdmonitionBlock(Node):
    admonition: Literal["note", "info", "tip", "warning", "danger", "example"]
    title: str = ""
    text: str


def _block_kind(v: Any) -> str | None:
    if isinstance(v, BaseModel):
        return type(v).__name__
    if isinstance(v, dict):
        for key, kind in _BLOCK_KEYS:
            if key in v:
                return kind
    return None


_BLOCK_KEYS = (
    ("steps", "StepsBlock"),
    ("items", "ListBlock"),
    ("command", "CommandBlock"),
    ("code", "CodeBlock"),
    ("columns", "TableBlock"),
    ("env_table", "EnvTableBlock"),
    ("admonition", "AdmonitionBlock"),
    ("text", "TextBlock"),
)

Block = Annotated[
    Annotated[StepsBlock, Tag("StepsBlock")]
    | Annotated[ListBlock, Tag("ListBlock")]
    | Annotated[CommandBlock, Tag("CommandBlock")]
    | Annotated[CodeBlock, Tag("CodeBlock")]
    | Annotated[TableBlock, Tag("TableBlock")]
    | Annotated[EnvTableBlock, Tag("EnvTableBlock")]
    | Annotated[AdmonitionBlock, Tag("AdmonitionBlock")]
    | Annotated[TextBlock, Tag("TextBlock")],
    Discriminator(
        _block_kind,
        custom_error_type="block_kind",
        custom_error_message="expected a block with one of the keys: "
        + ", ".join(k for k, _ in _BLOCK_KEYS),
    ),
]


class Section(Node):
    id: Slug
    title: str
    content: list[Block] = []
    sections: list[Section] = []


class PageFile(Node):
    """A page of the site other than an alarm: common issues, debugging, maintenance..."""

    page: Slug
    title: str
    order: int = 100
    intro: str = ""
    sections: list[Section]


# ---------------------------------------------------------------- alarms

Comparison = Literal[
    "GreaterThanThreshold",
    "GreaterThanOrEqualToThreshold",
    "LessThanThreshold",
    "LessThanOrEqualToThreshold",
]
Statistic = Literal["SampleCount", "Average", "Sum", "Minimum", "Maximum"]


class Metric(Node):
    namespace: str
    name: str
    dimensions: dict[str, str] = {}
    statistic: Statistic | None = None
    # A percentile such as p99, for metrics like Duration and Latency.
    extended_statistic: Annotated[str | None, Field(pattern=r"^p\d{1,2}(\.\d+)?$")] = None
    period: Annotated[int, Field(ge=10)] = 300
    unit: str | None = None


class MetricQuery(Node):
    """One line of metric math: a metric to fetch, or an expression over other ids."""

    id: Annotated[str, Field(pattern=r"^[a-z][a-zA-Z0-9_]*$")]
    metric: Metric | None = None
    expression: str | None = None
    label: str = ""
    return_data: bool = False


class Resolution(Node):
    when: str
    action: str
    commands: list[Command] = []


# ---------------------------------------------------------------- incident drills

# A JSON-able value of a call's parameters (strings may hold placeholders).
ParamValue = Any
# One minute of a metric in a drill: its value, the samples of that minute (percentiles), or
# nothing published (null).
MinuteValue = Number | Annotated[list[Number], Field(min_length=1, max_length=100)] | None
DAY_MINUTES = 1440  # a drill's metric data covers a day at most


class Test(Node):
    """What a drill tests on an output: a regular expression over its text (searched,
    multiline), or a JMESPath over its JSON (any of its documents) that is true or non-empty."""

    regex: str | None = None
    jmespath: str | None = None
    # What it shows in the scenario, in words: the page's "What it looks like" box.
    shows: str

    @model_validator(mode="after")
    def _one_test(self) -> Test:
        if (self.regex is None) == (self.jmespath is None):
            raise ValueError("give exactly one of `regex` and `jmespath`")
        return self


class Finding(Test):
    """What one investigation step must reveal in the drill's scenario (over what it prints)."""

    # The step as the page numbers it: 1 is "Is it still firing?", the data's first step is 2.
    step: Annotated[int, Field(ge=1)]
    # The regex's first group (or the JMESPath's value) must be a number at least this big.
    at_least: Number | None = None


class WorldCall(Node):
    """A call the drill makes in the world (boto3, as the operator): `lambda.update_alias`."""

    call: Annotated[str, Field(pattern=r"^[a-z0-9-]+\.[a-z][a-z0-9_]*$")]
    params: dict[str, ParamValue] = {}
    # Values of the answer (JMESPath) that later calls and checks use as {name}.
    save: dict[Ident, str] = {}
    # Made this many times; `{n}` in the parameters counts them (1, 2, ...).
    repeat: Annotated[int, Field(ge=1, le=100)] = 1

    @field_validator("params", mode="before")
    @classmethod
    def _plain(cls, v: Any) -> Any:
        """Nested mappings of the parameters are the call's, not the data's: no position entry."""
        def plain(x: Any) -> Any:
            if isinstance(x, dict):
                return {k: plain(val) for k, val in x.items() if k != "__loc__"}
            return [plain(i) for i in x] if isinstance(x, list) else x
        return plain(v)


class DrillLogs(Node):
    """Log events the scenario adds: `count` copies of `message`, the last 20 seconds ago."""

    group: str  # a log group name, or the prefix of one (a canary's group)
    message: str
    count: Annotated[int, Field(ge=1, le=500)] = 1
    every: Annotated[int, Field(ge=1)] = 30  # seconds between two events


class Recovery(WorldCall, Test):
    """The recovery condition, read in the world after the resolution ran (over its answer)."""


class Drill(Node):
    """A simulated incident: the fault that makes the alarm fire, what the page's steps must
    find in it, and the resolution that fixes it (runbook.drill)."""

    scenario: str  # one sentence: what happened
    # The alarm's metric (`metric`) or metric-math ids, one value a minute, oldest first, the
    # last one a minute ago. What the alarm is evaluated on, and what the world publishes.
    metric_data: dict[str, Annotated[list[MinuteValue], Field(max_length=DAY_MINUTES)]]
    logs: Annotated[list[DrillLogs], Field(max_length=20)] = []
    state: Annotated[list[WorldCall], Field(max_length=50)] = []  # the fault's resource state, made after seeding
    finds: list[Finding] = []
    resolution: str  # the `when` of the resolution that fixes it
    fill_ins: dict[Slug, str] = {}  # what the engineer would fill in, from the scenario
    recovered: Recovery


class Alarm(Node):
    id: Slug
    name: str  # CloudWatch alarm name pattern, e.g. kanjona-{env}-lambda-errors
    title: str
    severity: Severity
    summary: str  # one line: what the alarm means (goes into AlarmDescription)
    description: str = ""
    metric: Metric | None = None
    metrics: list[MetricQuery] = []
    comparison: Comparison
    threshold: Threshold
    evaluation_periods: Annotated[int, Field(ge=1)] = 1
    datapoints_to_alarm: Annotated[int | None, Field(ge=1)] = None
    treat_missing_data: Literal["breaching", "notBreaching", "ignore", "missing"] = "notBreaching"
    impact: str = ""
    investigation: list[Step]
    resolution: list[Resolution]
    related: list[Slug] = []
    # Former ids or names whose URLs must keep working (redirects).
    aliases: list[Slug] = []
    drill: Drill | None = None


class AlarmGroupFile(Node):
    group: Slug
    title: str
    order: int = 100  # position of the group in the navigation
    intro: str = ""
    alarms: Annotated[list[Alarm], Field(min_length=1)]


# ---------------------------------------------------------------- escalation


class SeverityLevel(Node):
    severity: Severity
    level: Annotated[str, Field(pattern=r"^P\d$")]
    response_time: str
    examples: str
    notify: str = ""


class Tier(Node):
    level: str
    title: str
    duties: list[str]
    escalate_after: str = ""
    # Severities this tier is engaged for (empty: all of them), in the order of `path`.
    severities: list[Severity] = []


# Whole contact values that hold a place instead of reaching anyone (besides empty, [...] and <...>).
_UNSET_WORDS = frozenset({"tbd", "todo", "fixme", "n/a", "na", "none", "-", "?", "..."})


def is_placeholder(value: str) -> bool:
    """Whether a contact value is a stand-in such as the seed's "[PagerDuty/Opsgenie link]": empty,
    bracketed as a whole ([...] or <...>), or a word like TBD."""
    v = value.strip()
    return not v or (v[0], v[-1]) in {("[", "]"), ("<", ">")} or v.lower() in _UNSET_WORDS


class Contact(Node):
    """One way to reach the team. A placeholder value means "not configured": `runbook check`
    warns at its line, the pages say so instead of showing it."""

    channel: str  # what it is: On-Call, Slack Channel, Email...
    value: str = ""  # what a reader sees: a channel name, an address, a number
    # Where it leads, when it can be opened (a schedule, the channel); an email address links by itself.
    url: Annotated[str | None, Field(pattern=r"^(https?://|mailto:|tel:)[^\s()<>]+$")] = None

    @property
    def configured(self) -> bool:
        return not is_placeholder(self.value)


class EscalationFile(Node):
    severity_levels: list[SeverityLevel]
    path: list[Tier]
    contacts: list[Contact]
    contacts_note: str = ""

    def level(self, severity: str) -> SeverityLevel:
        """The level an alarm severity maps onto (every severity has one: checked at load time)."""
        for lv in self.severity_levels:
            if lv.severity == severity:
                return lv
        raise KeyError(severity)

    def ladder(self, severity: str) -> list[Tier]:
        """The tiers engaged for `severity`, in order."""
        return [t for t in self.path if not t.severities or severity in t.severities]


# ---------------------------------------------------------------- the catalog


@dataclass
class Catalog:
    """Everything the pages, the alarm export and the gate's world are made from."""

    root: Path
    environments: list[Environment]
    resources: dict[str, Resource]
    inputs: dict[str, OperatorInput]
    groups: list[AlarmGroupFile]
    pages: list[PageFile]
    escalation: EscalationFile
    _scopes: dict[str, dict[str, str]] = field(default_factory=dict, repr=False)

    @property
    def alarms(self) -> list[Alarm]:
        return [a for g in self.groups for a in g.alarms]

    def alarm(self, alarm_id: str) -> Alarm:
        for a in self.alarms:
            if a.id == alarm_id:
                return a
        raise KeyError(alarm_id)

    def group_of(self, alarm_id: str) -> AlarmGroupFile:
        return next(g for g in self.groups if any(a.id == alarm_id for a in g.alarms))

    def env(self, name: str) -> Environment:
        for e in self.environments:
            if e.name == name:
                return e
        raise KeyError(name)

    def page(self, page_id: str) -> PageFile:
        return next(p for p in self.pages if p.page == page_id)

    @property
    def default_env(self) -> Environment:
        """The one declared `default: true` (the first, while the data is being checked)."""
        return next((e for e in self.environments if e.default), self.environments[0])

    def scope(self, env: str) -> dict[str, str]:
        """Placeholder values for one environment (cached)."""
        if env not in self._scopes:
            self._scopes[env] = placeholders.env_scope(self, self.env(env))
        return self._scopes[env]

    def threshold(self, alarm: Alarm, env: str) -> float | int:
        """The alarm's threshold in `env` (a literal, or an environment value it names)."""
        if isinstance(alarm.threshold, str):
            value = self.env(env).values[alarm.threshold.strip("{}")]
            assert isinstance(value, int | float), "checked at load time"
            return value
        return alarm.threshold

    def commands(self) -> list[Command]:
        return [c for c in _walk(self.groups + self.pages) if isinstance(c, Command)]


def _walk(nodes: Any) -> Iterator[Any]:
    if isinstance(nodes, BaseModel):
        yield nodes
        for name in type(nodes).model_fields:
            yield from _walk(getattr(nodes, name))
    elif isinstance(nodes, list | tuple):
        for n in nodes:
            yield from _walk(n)
    elif isinstance(nodes, dict):
        for n in nodes.values():
            yield from _walk(n)
