"""No secrets in the runbook: credentials found by detect-secrets' plugins, and literal account ids and hosts.

What is scanned, with which of detect-secrets' detectors (its own plugins, plus a few of ours
written on its `RegexBasedDetector` for what it lacks: unquoted AWS secret keys, AWS session
tokens, tokens in non-Slack webhook URLs):

* `scan_text`, the core: every format detector (AWS key ids and secret keys, private key blocks,
  `user:password@` in URLs, Slack tokens and webhook URLs, GitHub/GitLab/Stripe/... tokens) over
  the whole text at once, then, unless `heuristics=False`, the keyword detector (`password: ...`)
  and the quoted base64 high-entropy detector line by line. detect-secrets' heuristic filters
  drop what is templated (`{x}`, `<x>`, `${x}`), sequential (ABCDEF...), a UUID, a `$VAR`.
  A line holding `pragma: allowlist secret` (detect-secrets' own marker) is not reported.
* `scan_data`: every YAML file under runbook_data/, as raw text, so a hit is located at the line
  and column a person edits (block scalars too), even in a file that does not parse.
* `literal_values`: an account id or a host that environments.yaml declares, written out
  elsewhere in the data instead of its placeholder ({account}, {api_host}).

A problem names the kind of secret and never the secret, nor any part of it: the lines go to
terminals and CI logs. Verification (detect-secrets calling AWS or Slack with what it found) is
never run.
"""

from __future__ import annotations

import hashlib
import re
from bisect import bisect_right
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from detect_secrets.filters.allowlist import is_line_allowlisted
from detect_secrets.filters.heuristic import (
    is_indirect_reference,
    is_likely_id_string,
    is_not_alphanumeric_string,
    is_potential_uuid,
    is_prefixed_with_dollar_sign,
    is_sequential_string,
    is_templated_secret,
)
from detect_secrets.plugins.aws import AWSKeyDetector
from detect_secrets.plugins.azure_storage_key import AzureStorageKeyDetector
from detect_secrets.plugins.base import BasePlugin, RegexBasedDetector
from detect_secrets.plugins.basic_auth import BasicAuthDetector
from detect_secrets.plugins.discord import DiscordBotTokenDetector
from detect_secrets.plugins.github_token import GitHubTokenDetector
from detect_secrets.plugins.gitlab_token import GitLabTokenDetector
from detect_secrets.plugins.high_entropy_strings import Base64HighEntropyString
from detect_secrets.plugins.jwt import JwtTokenDetector
from detect_secrets.plugins.keyword import DENYLIST as KEYWORDS
from detect_secrets.plugins.keyword import KeywordDetector
from detect_secrets.plugins.openai import OpenAIDetector
from detect_secrets.plugins.private_key import PrivateKeyDetector
from detect_secrets.plugins.pypi_token import PypiTokenDetector
from detect_secrets.plugins.sendgrid import SendGridDetector
from detect_secrets.plugins.slack import SlackDetector
from detect_secrets.plugins.square_oauth import SquareOAuthDetector
from detect_secrets.plugins.stripe import StripeDetector
from detect_secrets.plugins.twilio import TwilioKeyDetector
from detect_secrets.util.code_snippet import get_code_snippet

from runbook.data import placeholders
from runbook.data.model import Environment
from runbook.data.yaml_reader import MAX_DATA_BYTES, MAX_FILE_BYTES, PathKey, Source, strings
from runbook.errors import Loc, Problem, shown_path

# ------------------------------------------------------------------ what detect-secrets lacks

_ASSIGN = r"""["']?[ \t]*(?:=|:|[ \t])[ \t]*["']?"""


def _names(*snake: str) -> str:
    """The names as shell, config and JSON spell them: aws_secret_access_key, AWS_SECRET_ACCESS_KEY,
    SecretAccessKey (listed, not IGNORECASE: a case-sensitive pattern is scanned for much faster)."""
    spelled = {form for name in snake for form in (name, name.upper(), name.title().replace("_", ""))}
    return "(?:" + "|".join(sorted(spelled, key=len, reverse=True)) + ")"


class AWSSecretKeyDetector(RegexBasedDetector):
    """An AWS secret access key assigned without quotes (detect-secrets' AWS plugin wants quotes):
    `AWS_SECRET_ACCESS_KEY=...`, `aws configure set aws_secret_access_key ...`, `"SecretAccessKey": ...`."""

    secret_type = "AWS Secret Access Key"
    denylist = (
        re.compile(
            _names("secret_access_key", "secretaccesskey", "aws_secret_key") + _ASSIGN
            + r"([A-Za-z0-9/+]{40})(?![A-Za-z0-9/+=])"
        ),
    )


class AWSSessionTokenDetector(RegexBasedDetector):
    """An AWS session token (STS): assigned to its usual names, or bare by its fixed prefixes."""

    secret_type = "AWS Session Token"
    denylist = (
        re.compile(_names("session_token", "security_token") + _ASSIGN + r"([A-Za-z0-9/+=]{100,})"),
        # Tokens begin with the same serialized header: IQoJb3JpZ2luX2Vj ("\x21\n\torigin_ec...")
        # today, FwoGZXIvYXdz ("\x17\n\x06er/aws") before.
        re.compile(r"((?:IQoJb3JpZ2luX2V|FwoGZXIvYXdz|FQoGZXIvYXdz)[A-Za-z0-9/+=]{80,})"),
    )


class WebhookTokenDetector(RegexBasedDetector):
    """Webhook URLs whose path or query is the credential (Slack's are detect-secrets' own)."""

    secret_type = "Webhook URL Token"
    denylist = (
        re.compile(r"https://(?:(?:ptb|canary)\.)?discord(?:app)?\.com/api/webhooks/\d+/[\w-]{20,}"),
        re.compile(r"https://[\w.-]*(?:webhook\.office\.com|outlook\.office(?:365)?\.com)/webhook(?:b2)?/[^\s\"'<>]+"),
        re.compile(r"https://chat\.googleapis\.com/v1/spaces/[^\s\"'<>]*[?&](?:key|token)=[^\s\"'<>&]{16,}"),
        re.compile(r"https://events\.pagerduty\.com/integration/[0-9a-f]{32}/enqueue"),
    )


class URLQueryTokenDetector(RegexBasedDetector):
    """Any other URL carrying a credential in its query (?token=, ?access_token=, ?sig=...)."""

    secret_type = "URL Query Token"
    denylist = (
        re.compile(
            r"(?i)https?://[^\s\"'<>]*[?&](?:token|access_token|api_?key|apikey|sig|signature|secret)="
            r"([A-Za-z0-9_\-%.~+/]{16,})"
        ),
    )


# ------------------------------------------------------------------ the detectors and their kinds

# Formats: exact shapes, cheap, run over whole texts (built pages too). Not detect-secrets'
# npm detector (quadratic on minified scripts; no npm in the runbook), nor its IBM, Cloudant,
# Softlayer, Artifactory ones (slow keyword-assignment patterns for services Kanjona does not use).
_FORMAT_TYPES: tuple[type[RegexBasedDetector], ...] = (
    AWSKeyDetector, AWSSecretKeyDetector, AWSSessionTokenDetector, PrivateKeyDetector, BasicAuthDetector,
    SlackDetector, WebhookTokenDetector, URLQueryTokenDetector, GitHubTokenDetector, GitLabTokenDetector,
    JwtTokenDetector, StripeDetector, TwilioKeyDetector, SendGridDetector, PypiTokenDetector, OpenAIDetector,
    DiscordBotTokenDetector, AzureStorageKeyDetector, SquareOAuthDetector,
)
_AWS_KEY_ID = AWSKeyDetector.denylist[0]
_KINDS = {
    "AWS Secret Access Key": "an AWS secret access key",
    "AWS Session Token": "an AWS session token",
    "Private Key": "a private key",
    "Basic Auth Credentials": "a password in a URL (user:password@host)",
    "Webhook URL Token": "a webhook URL with its token",
    "URL Query Token": "a URL with a token in its query",
    "Secret Keyword": "a password or secret written after a secret-sounding name",
    "Base64 High Entropy String": "a high-entropy string (the shape of a key or token)",
}


def _kind(secret_type: str, value: str) -> str:
    if secret_type == "AWS Access Key":
        return "an AWS access key id" if _AWS_KEY_ID.fullmatch(value) else "an AWS secret access key"
    if secret_type == "Slack Token":
        return "a Slack webhook URL with its token" if value.startswith("https://") else "a Slack token"
    return _KINDS.get(secret_type, f"a {secret_type.removesuffix('s')}")


@cache
def _formats() -> tuple[RegexBasedDetector, ...]:
    return tuple(t() for t in _FORMAT_TYPES)


@dataclass(frozen=True)
class _LineDetector:
    """A line-by-line detector and what every line it reports matches, so that only those lines
    are handed to it: `lowered`, a pattern in lower case searched in the lowered text (ten times
    faster than IGNORECASE)."""

    plugin: BasePlugin
    trigger: re.Pattern[str]
    lowered: bool = False

    def lines(self, text: str, starts: list[int]) -> list[int]:
        if not self.lowered:
            matches = self.trigger.finditer(text)
        elif len(lowered := text.lower()) == len(text):
            matches = self.trigger.finditer(lowered)
        else:  # lowering changed the offsets (a rare letter): case-insensitive then
            matches = re.finditer(self.trigger.pattern, text, re.IGNORECASE)
        return sorted({bisect_right(starts, m.start()) - 1 for m in matches})


@cache
def _heuristics() -> tuple[_LineDetector, ...]:
    """The keyword detector (a secret-sounding name), the base64 entropy one (a quoted run)."""
    entropy = Base64HighEntropyString(limit=4.5)
    return _LineDetector(KeywordDetector(), re.compile("|".join(KEYWORDS)), lowered=True), _LineDetector(
        entropy, entropy.regex
    )


# ------------------------------------------------------------------ scanning


@dataclass(frozen=True, order=True)
class Finding:
    """A secret found: where, and what kind. `digest` tells two findings of the same secret apart
    from two of different ones without keeping the secret."""

    loc: Loc
    kind: str
    digest: str


def _digest(value: str) -> str:
    return hashlib.sha256(value.encode("utf-8")).hexdigest()


def _filtered(value: str) -> bool:
    """detect-secrets' heuristic filters that hold for any detector."""
    return (
        is_templated_secret(value)
        or is_prefixed_with_dollar_sign(value)
        or is_sequential_string(value)
        or is_potential_uuid(value)
        or is_not_alphanumeric_string(value)
    )


def _line_starts(text: str) -> list[int]:
    starts = [0]
    starts.extend(m.end() for m in re.finditer("\n", text))
    return starts


def _format_hits(text: str) -> Iterator[tuple[int, str, str]]:
    """(offset, secret type, value) of every format detector's match in `text`."""
    for plugin in _formats():
        own = type(plugin).analyze_string is not RegexBasedDetector.analyze_string  # it validates matches
        for regex in plugin.denylist:
            for m in regex.finditer(text):
                group = next((g for g in range(1, (m.lastindex or 0) + 1) if m.group(g)), 0)
                value = m.group(group)
                if own and value not in set(plugin.analyze_string(value)):
                    continue
                yield m.start(group), plugin.secret_type, value


def _templated(value: str) -> bool:
    """A value the runbook fills in: a `{placeholder}`, an operator's `<input>`, a shell `$VAR` or `$(...)`."""
    return bool(placeholders.PLACEHOLDER_SHAPE.search(value) or placeholders.FILL_IN.search(value) or "$" in value)


def _heuristic_hits(file: str, text: str, lines: list[str], starts: list[int]) -> Iterator[tuple[int, int, str, str]]:
    for detector in _heuristics():
        plugin = detector.plugin
        for i in detector.lines(text, starts):
            line = lines[i]
            if len(line) > 5000:  # a minified bundle or an index: formats only
                continue
            # Their analyze_line never calls out: only the format detectors have a networked verify().
            for found in plugin.analyze_line(filename=file, line=line):
                value = found.secret_value or ""
                if is_indirect_reference(line) or is_likely_id_string(value, line, plugin) or _templated(value):
                    continue
                yield i, max(line.find(value), 0), plugin.secret_type, value


def scan_text(text: str, file: str, *, heuristics: bool = True, lines: list[str] | None = None) -> list[Finding]:
    """Every secret in `text`, located in `file` (shown as given).

    `lines`: the lines positions are given in when they are not `text`'s own (a page's visible text,
    whose offsets map back to its source lines) — same number of lines.
    The file's kind (by its name's suffix) chooses detect-secrets' keyword rules: a YAML file
    counts `key: value` as an assignment.
    """
    own_lines = text.split("\n")
    shown_lines = lines if lines is not None else own_lines
    starts = _line_starts(text)
    raw: list[tuple[int, int, str, str]] = []  # (line index, column index, type, value)
    for offset, secret_type, value in _format_hits(text):
        i = bisect_right(starts, offset) - 1
        raw.append((i, offset - starts[i], secret_type, value))
    if heuristics:
        raw.extend(_heuristic_hits(file, text, own_lines, starts))
    found: dict[tuple[int, str, str], Finding] = {}
    for i, col, secret_type, value in raw:
        if _filtered(value) or _allowlisted(file, own_lines, i):
            continue
        kind = _kind(secret_type, value)
        key = (i, kind, value)
        if key not in found:  # one line per secret and place, however many detectors agree
            found[key] = Finding(Loc(file, i + 1, _column(shown_lines, own_lines, i, col)), kind, _digest(value))
    # Two detectors naming the same value at one place (a Slack URL is also "a URL with a token"):
    # the first, most specific, wins.
    by_place: dict[tuple[int, str], Finding] = {}
    for (i, _kind_name, value), f in found.items():
        by_place.setdefault((i, value), f)
    return sorted(by_place.values())


def _column(shown: list[str], own: list[str], i: int, col: int) -> int:
    """1-based column in the shown line of what sits at `col` of the scanned line."""
    if shown is own or i >= len(shown):
        return col + 1
    for length in (12, 4):  # the start of the match; markup may split it after a few characters
        target = own[i][col : col + length]
        at = shown[i].find(target) if target else -1
        if at >= 0:
            return at + 1
    return 1


def _allowlisted(file: str, lines: list[str], i: int) -> bool:
    line = lines[i]
    if "pragma" not in line and (i == 0 or "pragma" not in lines[i - 1]):
        return False
    return bool(is_line_allowlisted(file, line, get_code_snippet(lines, i + 1)))


def problem(f: Finding, where: str) -> Problem:
    """The located line of a finding: the kind, never the secret."""
    return Problem(
        f.loc,
        f"secret: {f.kind} is written in {where}: remove it, and rotate it (it has been exposed); "
        f"commands get credentials from the engineer's session or Secrets Manager at run time",
    )


def data_files(root: Path) -> list[Path]:
    return sorted(p for p in root.rglob("*") if p.suffix in (".yaml", ".yml") and p.is_file())


def scan_data(root: Path) -> list[Problem]:
    """Every secret in the YAML files of runbook_data/, at the line and column of the file."""
    problems = []
    budget = MAX_DATA_BYTES
    for path in data_files(root):
        size = path.stat().st_size
        if size > MAX_FILE_BYTES or size > budget:
            continue  # not read: the loader says so, at the file
        budget -= size
        text = path.read_bytes().decode("utf-8", errors="replace")  # not UTF-8: the reader says so
        problems += [problem(f, "the data") for f in scan_text(text, shown_path(path))]
    return problems


# ------------------------------------------------------------------ literal account ids and hosts

_HOST = re.compile(r"(?i)^(?=.{4,253}$)(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")


@dataclass(frozen=True)
class _Literal:
    pattern: re.Pattern[str]
    what: str  # "account id" / "host"
    placeholder: str
    envs: tuple[str, ...]


def _literals(environments: Iterable[Environment]) -> list[_Literal]:
    by_value: dict[tuple[str, str], tuple[str, list[str]]] = {}
    for env in environments:
        by_value.setdefault(("account id", env.account), ("account", []))[1].append(env.name)
        for key, value in env.values.items():
            if isinstance(value, str) and _HOST.match(value):
                by_value.setdefault(("host", value.lower()), (key, []))[1].append(env.name)
    out = []
    for (what, value), (name, envs) in by_value.items():
        if what == "account id":
            pattern = re.compile(rf"(?<!\d){re.escape(value)}(?!\d)")
        else:
            pattern = re.compile(rf"(?<![\w.-])(?i:{re.escape(value)})(?![\w-]|\.[\w-])")
        out.append(_Literal(pattern, what, name, tuple(envs)))
    return out


def _locate(source: Source, path: PathKey, pattern: re.Pattern[str], nth: int, offset: int) -> Loc:
    """Where the nth match of `pattern` in the string at `path` is in the file: found again in the
    file's lines from where the value starts (a folded or quoted value's offsets are not its columns)."""
    start = source.loc(path)
    seen = 0
    for i in range(start.line - 1, len(source.lines)):
        from_col = start.col - 1 if i == start.line - 1 else 0
        for m in pattern.finditer(source.lines[i], from_col):
            if seen == nth:
                return Loc(source.file, i + 1, m.start() + 1)
            seen += 1
    return source.text_loc(path, offset)


def literal_values(environments: Iterable[Environment], sources: Iterable[Source], declared_in: str) -> list[Problem]:
    """Account ids and hosts of environments.yaml (`declared_in`) written literally elsewhere."""
    literals = _literals(environments)
    if not literals:
        return []
    any_literal = re.compile("|".join(lit.pattern.pattern for lit in literals))
    problems = []
    for source in sources:
        if source.file == declared_in:
            continue
        for path, text in strings(source.data):
            if not any_literal.search(text):
                continue
            for lit in literals:
                for nth, m in enumerate(lit.pattern.finditer(text)):
                    envs = " and ".join(f"'{e}'" for e in lit.envs)
                    problems.append(
                        Problem(
                            _locate(source, path, lit.pattern, nth, m.start()),
                            f"the {lit.what} of environment {envs} is written literally: write "
                            f"{{{lit.placeholder}}} (each environment's tab shows its own value)",
                        )
                    )
    return problems
