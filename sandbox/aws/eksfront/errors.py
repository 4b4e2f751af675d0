"""EKS error responses.

Owns: the exception type the front's handlers raise and its wire form.

Rules kept (from the EKS service model, botocore/data/eks/2017-11-01/service-2.json):
- each error has the HTTP status the model gives it (ResourceNotFoundException 404,
  ResourceInUseException 409, InvalidParameterException / InvalidRequestException /
  BadRequestException 400, NotFoundException 404, ...);
- the error code travels in the ``x-amzn-ErrorType`` header and, as well, in the body's
  ``__type`` (botocore and the Rust SDK read either);
- the body is a JSON object with ``message`` plus the optional members the model declares for
  that error (``clusterName``, ``nodegroupName``, ``addonName``); members the model does not
  declare are never sent.
"""

import json

STATUS = {
    "AccessDeniedException": 403,
    "BadRequestException": 400,
    "ClientException": 400,
    "InvalidParameterException": 400,
    "InvalidRequestException": 400,
    "InvalidStateException": 400,
    "NotFoundException": 404,
    "ResourceInUseException": 409,
    "ResourceLimitExceededException": 400,
    "ResourceNotFoundException": 404,
    "ServerException": 500,
    "ServiceUnavailableException": 503,
    "ThrottlingException": 429,
}

# Members each error shape declares besides ``message``.
MEMBERS = {
    "ClientException": ("clusterName", "nodegroupName", "addonName"),
    "InvalidParameterException": ("clusterName", "nodegroupName", "fargateProfileName", "addonName"),
    "InvalidRequestException": ("clusterName", "nodegroupName", "addonName"),
    "InvalidStateException": ("clusterName",),
    "ResourceInUseException": ("clusterName", "nodegroupName", "addonName"),
    "ResourceLimitExceededException": ("clusterName", "nodegroupName"),
    "ResourceNotFoundException": ("clusterName", "nodegroupName", "fargateProfileName", "addonName"),
    "ServerException": ("clusterName", "nodegroupName", "addonName"),
}


class EksError(Exception):
    """An error the front answers with; ``code`` is the EKS error shape name."""

    def __init__(self, code, message, **members):
        super().__init__(message)
        if code not in STATUS:
            raise ValueError(f"unknown EKS error code {code}")
        self.code = code
        self.message = message
        allowed = MEMBERS.get(code, ())
        self.members = {k: v for k, v in members.items() if k in allowed and v is not None}

    @property
    def status(self):
        return STATUS[self.code]

    def body(self):
        doc = {"__type": self.code, "message": self.message}
        doc.update(self.members)
        return json.dumps(doc).encode()

    def headers(self):
        return [("Content-Type", "application/json"), ("x-amzn-ErrorType", self.code)]


def not_found(message, **members):
    return EksError("ResourceNotFoundException", message, **members)


def in_use(message, **members):
    return EksError("ResourceInUseException", message, **members)


def invalid_parameter(message, **members):
    return EksError("InvalidParameterException", message, **members)


def invalid_request(message, **members):
    return EksError("InvalidRequestException", message, **members)


def cluster_not_found(name):
    # Same words as moto (which took them from the real API).
    return not_found(f"No cluster found for name: {name}.", clusterName=name)
