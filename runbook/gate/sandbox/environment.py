"""The environments the gate gives AWS CLI and botocore processes: built from nothing.

No variable of the caller (``AWS_PROFILE``, keys, ``AWS_ROLE_ARN``, proxies...) reaches a
process of the gate. Every such environment is :func:`base` plus the few explicit pieces
below that its use needs; nothing else is added anywhere.
"""

from __future__ import annotations

import os

__all__ = [
    "LOOPBACK_NO_PROXY", "MOTO_TEST_CREDENTIALS", "NO_CONFIG_FILES", "NO_PAGER",
    "STUB_CREDENTIALS", "base", "credentials", "snippet_base",
]

#: no config or credentials file of the host is read
NO_CONFIG_FILES = {"AWS_CONFIG_FILE": os.devnull, "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
#: the CLI prints, it never starts a pager
NO_PAGER = {"AWS_PAGER": ""}
#: requests to the local moto server never go through a proxy
LOOPBACK_NO_PROXY = {"NO_PROXY": "127.0.0.1,localhost", "no_proxy": "127.0.0.1,localhost"}


def base(path: str, home: str) -> dict[str, str]:
    """What every AWS process of the gate starts from: a PATH, a HOME, a UTF-8 locale, no
    instance metadata service and no retries."""
    return {
        "PATH": path, "HOME": home, "LANG": "C.UTF-8",
        "AWS_EC2_METADATA_DISABLED": "true", "AWS_MAX_ATTEMPTS": "1",
    }


def snippet_base(path: str, home: str, tmp: str, python_path: str) -> dict[str, str]:
    """What every snippet starts from, before its run's own variables (credentials, config
    files, endpoint, ``aws``); also the whole environment of the CLI fork server, whose
    import-time reads must match the snippets'."""
    return {
        **base(path, home), "TMPDIR": tmp, "PYTHONPATH": python_path,
        "PYTHONUNBUFFERED": "1", "PYTHONDONTWRITEBYTECODE": "1", **NO_PAGER, **LOOPBACK_NO_PROXY,
    }


def credentials(access_key_id: str, secret_access_key: str, region: str) -> dict[str, str]:
    return {"AWS_ACCESS_KEY_ID": access_key_id, "AWS_SECRET_ACCESS_KEY": secret_access_key,
            "AWS_DEFAULT_REGION": region}


#: the static tier's keys: botocore signs with them, nothing is ever sent
STUB_CREDENTIALS = credentials("AKIAGATESTUB00000000", "gatestub/secret/key/not/real/0000000000",
                               "us-east-1")
#: moto's keys, for boto3 clients of the sandbox worker itself (never the host's)
MOTO_TEST_CREDENTIALS = credentials("testing", "testing", "us-east-1")
