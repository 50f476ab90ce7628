"""No secrets: credentials in the data or a page fail with a located line naming the kind, never
the secret; account ids and hosts of environments.yaml written literally name their placeholder."""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from runbook.cli import main
from runbook.data.secrets import scan_data, scan_text
from runbook.site import secret_scan
from runbook.site.build import Built, build

ROOT = Path(__file__).resolve().parent.parent

# Fakes in the shapes detect-secrets knows, put together here so this file holds none whole.
KEY_ID = "AKIA" + "Z7QK3M2XW9RTPLVB"
SECRET_KEY = "q8Zt3LwX9vRb2NmK7pYc" + "4HsJ6dFg1AeUo5TiWl0Q"
SESSION_TOKEN = "IQoJb3JpZ2luX2Vj" + "EJrXb7Qz9kLmN2pR4sT6vW8yA1cE3gI5jK7Mo9" * 4
PRIVATE_KEY_BODY = "MIIEowIBAAKCAQEA" + "x3b7Qz9kLmN2pR4sT6vW8yA1cE3gI5jK7Mo9pQ"
URL_PASSWORD = "Xy7pQ2rT9w"
SLACK_TOKEN = "q7W8e9R0t1Y2u3I4" + "o5P6a7S8"
SLACK_WEBHOOK = "https://hooks.slack.com/services/T0A1B2C3D/B0D4E5F6G/" + SLACK_TOKEN
DISCORD_TOKEN = "AbCdEfGhIjKlMnOp" + "QrStUvWxYz0123456789"


@dataclass(frozen=True)
class Case:
    id: str
    kind: str  # as the located line names it
    secret: str  # must appear in no output
    prose: str | None = None  # a line of prose holding the secret (a page's intro)
    shell: str | None = None  # a line of a command holding it
    block: tuple[str, ...] = ()  # lines of a block scalar (the private key)


CASES = [
    Case("aws-key-id", "an AWS access key id", KEY_ID, prose=f"Use the key {KEY_ID} for the backups."),
    Case("aws-secret-key", "an AWS secret access key", SECRET_KEY,
         shell=f"export AWS_SECRET_ACCESS_KEY={SECRET_KEY}"),
    Case("aws-session-token", "an AWS session token", SESSION_TOKEN, shell=f"export AWS_SESSION_TOKEN={SESSION_TOKEN}"),
    Case("private-key", "a private key", PRIVATE_KEY_BODY,
         block=("The deploy key:", "-----BEGIN RSA PRIVATE KEY-----", PRIVATE_KEY_BODY,
                "-----END RSA PRIVATE KEY-----")),
    Case("password-in-url", "a password in a URL (user:password@host)", URL_PASSWORD,
         prose=f"The database console is at https://admin:{URL_PASSWORD}@db.internal.example.com/console."),
    Case("slack-webhook", "a Slack webhook URL with its token", SLACK_TOKEN,
         prose=f"Announce maintenance on {SLACK_WEBHOOK} first."),
    Case("discord-webhook", "a webhook URL with its token", DISCORD_TOKEN,
         prose=f"Or on https://discord.com/api/webhooks/123456789012345678/{DISCORD_TOKEN} if Slack is down."),
]

PAGE = "procedures/maintenance.yaml"
INTRO = re.compile(r"^intro: .*$", re.M)
SHELL = re.compile(r"^( *)- shell: \|\n", re.M)


def data_copy(tmp_path: Path) -> Path:
    data = tmp_path / "runbook_data"
    shutil.copytree(ROOT / "runbook_data", data)
    return data


def put(data: Path, case: Case) -> tuple[int, int]:
    """Write the case into the maintenance page; the line and column of its secret in the file."""
    path = data / PAGE
    text = path.read_text(encoding="utf-8")
    if case.shell is not None:
        m = SHELL.search(text)
        assert m, f"{PAGE} has no `- shell: |` command"
        indent = " " * (len(m.group(1)) + 4)
        text = text[: m.end()] + f"{indent}{case.shell}\n" + text[m.end():]
    elif case.block:
        body = "".join(f"  {line}\n" for line in case.block)
        text = INTRO.sub(lambda _: "intro: |\n" + body.rstrip("\n"), text, count=1)
    else:
        text = INTRO.sub(lambda _: f"intro: {case.prose}", text, count=1)
    path.write_text(text, encoding="utf-8")
    return _position(text, case)


def _position(text: str, case: Case) -> tuple[int, int]:
    # Where detect-secrets' match starts: the secret itself, or the block's BEGIN line.
    needle = "BEGIN RSA PRIVATE KEY" if case.block else case.secret
    for n, line in enumerate(text.splitlines(), 1):
        if needle in line:
            col = line.index(needle) + 1
            if case.id in ("slack-webhook",):
                col = line.index("https://hooks.slack.com") + 1  # the whole URL is the token
            elif case.id == "discord-webhook":
                col = line.index("https://discord.com") + 1
            return n, col
    raise AssertionError(f"{needle} not written")


def check(data: Path, *extra: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(["--data", str(data), "check", *extra])
    out, err = capsys.readouterr()
    return code, out + err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_a_secret_in_the_data_is_a_located_error_naming_its_kind(
    case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    data = data_copy(tmp_path)
    line, col = put(data, case)
    monkeypatch.chdir(tmp_path)
    code, output = check(Path("runbook_data"), capsys=capsys)
    assert code == 1
    assert "Traceback" not in output
    expected = f"runbook_data/{PAGE}:{line}:{col}: secret: {case.kind} is written in the data: remove it"
    assert expected in output, output
    assert case.secret not in output
    assert re.search(r"\d+ problem\(s\) found", output)


def test_every_secret_is_reported_at_once(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = data_copy(tmp_path)
    (data / "alarms" / "lambda.yaml").write_text(
        (data / "alarms" / "lambda.yaml").read_text(encoding="utf-8") + f"# old key: {KEY_ID}\n", encoding="utf-8"
    )
    line, col = put(data, CASES[4])
    code, output = check(data, capsys=capsys)
    assert code == 1
    assert f"{PAGE}:{line}:{col}: secret: a password in a URL" in output
    # A comment is scanned too (the file's raw text, not only its values).
    assert re.search(r"alarms/lambda\.yaml:\d+:12: secret: an AWS access key id", output), output
    assert KEY_ID not in output and URL_PASSWORD not in output


def test_a_secret_in_a_file_that_does_not_parse_is_still_found(tmp_path: Path, capsys) -> None:
    data = data_copy(tmp_path)
    (data / "procedures" / "broken.yaml").write_text(f"page: [unclosed\nnote: {KEY_ID}\n", encoding="utf-8")
    code, output = check(data, capsys=capsys)
    assert code == 1
    assert "broken.yaml:2:7: secret: an AWS access key id" in output
    assert "YAML syntax error" in output
    assert KEY_ID not in output


def test_templated_and_fetched_credentials_are_not_secrets() -> None:
    text = (
        "  shell: |\n"
        "    export AWS_SECRET_ACCESS_KEY=$(aws configure get aws_secret_access_key)\n"
        "    password=$(aws secretsmanager get-secret-value --secret-id kanjona-{env}-db --query SecretString)\n"
        "    curl https://{user}:<password>@{api_host}/health\n"
        "  secret: kanjona-{env}-db-credentials\n"
        "  password: <password>\n"
    )
    assert scan_text(text, "x.yaml") == []


def test_an_allowlisted_line_is_not_reported() -> None:
    # detect-secrets' own marker, for a documented fake (AWS's example key, say).
    assert scan_text(f"note: {KEY_ID}  # pragma: allowlist secret\n", "x.yaml") == []


# ------------------------------------------------------------------ literal account ids and hosts


def _intro(data: Path, prose: str) -> tuple[int, int, str]:
    path = data / PAGE
    text = INTRO.sub(lambda _: f"intro: {prose}", path.read_text(encoding="utf-8"), count=1)
    path.write_text(text, encoding="utf-8")
    n = next(i for i, line in enumerate(text.splitlines(), 1) if line.startswith("intro: "))
    return n, len("intro: ") + 1, text


def _environments(data: Path) -> dict[str, dict[str, str]]:
    import yaml

    envs = yaml.safe_load((data / "environments.yaml").read_text(encoding="utf-8"))["environments"]
    return {e["name"]: {"account": e["account"], **{k: str(v) for k, v in e["values"].items()}} for e in envs}


def test_a_literal_account_id_names_the_placeholder(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = data_copy(tmp_path)
    account = _environments(data)["prod"]["account"]
    prose = f"Restores run in arn:aws:iam::{account}:role/restore."
    line, col, _ = _intro(data, prose)
    code, output = check(data, capsys=capsys)
    assert code == 1
    col += prose.index(account)
    assert (f"{PAGE}:{line}:{col}: the account id of environment 'prod' is written literally: write {{account}}"
            in output), output
    # environments.yaml declares it: not an error there.
    assert not any(line.startswith(str(data / "environments.yaml")) for line in output.splitlines()), output


def test_a_literal_host_in_a_command_names_the_placeholder(tmp_path: Path, capsys) -> None:
    data = data_copy(tmp_path)
    host = _environments(data)["dev"]["api_host"]
    path = data / PAGE
    text = path.read_text(encoding="utf-8")
    m = SHELL.search(text)
    assert m
    shell = f"curl -s https://{host}/health"
    text = text[: m.end()] + " " * (len(m.group(1)) + 4) + shell + "\n" + text[m.end():]
    path.write_text(text, encoding="utf-8")
    line = text[: m.end()].count("\n") + 1
    col = len(m.group(1)) + 4 + shell.index(host) + 1
    code, output = check(data, capsys=capsys)
    assert code == 1
    assert (f"{PAGE}:{line}:{col}: the host of environment 'dev' is written literally: write {{api_host}}"
            in output), output


def test_placeholders_and_other_hosts_are_not_literals(tmp_path: Path, capsys) -> None:
    data = data_copy(tmp_path)
    prod = _environments(data)["prod"]
    _intro(data, f"See https://{{api_host}}/ in {{account}}; not sub.{prod['api_host']}x, nor 1{prod['account']}.")
    code, output = check(data, capsys=capsys)
    assert "written literally" not in output
    assert "secret:" not in output
    assert code == 0, output


def test_the_data_holds_no_secret_and_no_literal(capsys: pytest.CaptureFixture[str]) -> None:
    assert scan_data(ROOT / "runbook_data") == []
    main(["--data", str(ROOT / "runbook_data"), "check"])
    output = "".join(capsys.readouterr())
    assert "secret:" not in output and "written literally" not in output


# ------------------------------------------------------------------ pages and the built site


def _page_lines() -> list[str]:
    lines = ["# Secrets page", ""]
    for case in CASES:
        if case.block:
            lines += ["```", *case.block, "```"]
        else:
            lines += ["```bash", case.shell, "```"] if case.shell else [case.prose or ""]
        lines.append("")
    return lines


@pytest.fixture(scope="module")
def page_build(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Built]:
    """One build of the docs with a hand-written page holding every kind of secret."""
    tmp = tmp_path_factory.mktemp("secrets-docs")
    docs = tmp / "docs"
    shutil.copytree(ROOT / "docs", docs)
    (docs / "secrets.md").write_text("\n".join(_page_lines()) + "\n", encoding="utf-8")
    return docs, build(ROOT / "mkdocs.yml", tmp / "out", docs_dir=docs)


def test_a_hand_written_page_with_secrets_fails_the_build(page_build: tuple[Path, Built]) -> None:
    docs, built = page_build
    assert built.returncode == 1, built.output
    assert "Traceback" not in built.output
    assert "the site holds secrets" in built.output
    page = (docs / "secrets.md").read_text(encoding="utf-8")
    for case in CASES:
        line, col = _position(page, case)
        expected = f"{docs / 'secrets.md'}:{line}:{col}: secret: {case.kind} is written in the page: remove it"
        assert expected in built.output, built.output
        assert case.secret not in built.output
    # Found in docs/, so not reported again where the build copied it (the page, the search index).
    assert "is written in the built site" not in built.output


def test_check_site_reports_secrets_of_a_built_site(tmp_path: Path, built_site: Built, capsys) -> None:
    site = tmp_path / "site"
    shutil.copytree(built_site.site_dir, site)
    assert secret_scan.site_problems(site) == []  # the real site is clean
    page = site / "maintenance" / "index.html"
    html = page.read_text(encoding="utf-8")
    # As the theme writes them: a key in highlighted code, split by spans; a password in a link's href
    # only; a secret key behind escaped quotes.
    added = (
        f'<p>id <code><span class="n">{KEY_ID[:8]}</span><span class="n">{KEY_ID[8:]}</span></code></p>\n'
        f'<p><a href="https://admin:{URL_PASSWORD}@db.example.com/">the console</a></p>\n'
        f"<p>aws_secret_access_key = &quot;{SECRET_KEY}&quot;</p>\n"
    )
    head, sep, tail = html.partition("</article>")
    assert sep
    page.write_text(head + added + sep + tail, encoding="utf-8")
    first = head.count("\n") + 1
    code, output = check(ROOT / "runbook_data", "--site", str(site), capsys=capsys)
    assert code == 1
    assert "Traceback" not in output
    shown = str(page)
    assert f"{shown}:{first}:" in output and "an AWS access key id is written in the built site" in output
    assert f"{shown}:{first + 1}:" in output and "a password in a URL" in output
    assert f"{shown}:{first + 2}:" in output and "an AWS secret access key" in output
    assert output.count("is written in the built site") == 3, output
    for secret in (KEY_ID, URL_PASSWORD, SECRET_KEY):
        assert secret not in output


def test_check_site_of_a_clean_site_passes(built_site: Built, capsys) -> None:
    code, output = check(ROOT / "runbook_data", "--site", str(built_site.site_dir), capsys=capsys)
    assert "secret:" not in output
    assert code == 0, output
    assert f"built site OK: no secrets in {built_site.site_dir}" in output


def test_the_docs_hold_no_secret() -> None:
    assert secret_scan.scan_docs(ROOT / "docs") == []
