"""A fix for moto's signature check of requests without a body, applied in the worker.

With access control on, moto re-signs each request to compare signatures. For a request
without a body it signs its parsed parameters instead (for a GET without a query string:
the request's headers), so every body-less REST call (Lambda, API Gateway, Route 53 and
CloudFront reads) fails with SignatureDoesNotMatch whatever the policy says (moto 5.2.5,
iam/access_control.py `_create_aws_request`). Re-signing the body as sent is what AWS does.
"""

from __future__ import annotations

from typing import Any

__all__ = ["sign_the_body_as_sent"]


def sign_the_body_as_sent() -> None:
    from botocore.awsrequest import AWSRequest
    from moto.iam import access_control

    def create_aws_request(self: Any) -> AWSRequest:
        signed = self._get_string_between("SignedHeaders=", ",", self._headers["Authorization"]).split(";")
        headers = self._create_headers_for_aws_request(signed, self._headers)
        # A form-encoded POST (query protocol) keeps moto's own handling: its parsed form.
        body = self._body or (b"" if self._method in ("GET", "HEAD", "DELETE") else self._data)
        request = AWSRequest(method=self._method, url=self._path, data=body, headers=headers)
        request.context["timestamp"] = headers["X-Amz-Date"]
        return request

    access_control.IAMRequestBase._create_aws_request = create_aws_request  # type: ignore[method-assign]
