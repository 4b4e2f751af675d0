"""Strict check of raw EKS responses against botocore's EKS service model.

botocore's parser quietly drops members it does not know and does not check enums; the Rust
SDK does the same. This check does not: every 2xx body must contain only members of the
operation's output shape, with the model's types and enum values; every error must carry an
``x-amzn-ErrorType`` naming an EKS error shape, the HTTP status the model gives it, and a JSON body with ``message`` and only the
error shape's members.
"""

import json


class ShapeError(AssertionError):
    pass


def _check(shape, value, path, problems):
    if value is None:
        return
    kind = shape.type_name
    if kind == "structure":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected object for {shape.name}, got {type(value).__name__}")
            return
        for key, item in value.items():
            member = shape.members.get(key)
            if member is None:
                problems.append(f"{path}.{key}: not a member of {shape.name}")
                continue
            _check(member, item, f"{path}.{key}", problems)
        for key in shape.required_members:
            if key not in value:
                problems.append(f"{path}: required member {key} of {shape.name} missing")
    elif kind == "list":
        if not isinstance(value, list):
            problems.append(f"{path}: expected list, got {type(value).__name__}")
            return
        for i, item in enumerate(value):
            _check(shape.member, item, f"{path}[{i}]", problems)
    elif kind == "map":
        if not isinstance(value, dict):
            problems.append(f"{path}: expected map, got {type(value).__name__}")
            return
        for key, item in value.items():
            _check(shape.value, item, f"{path}[{key!r}]", problems)
    elif kind == "string":
        if not isinstance(value, str):
            problems.append(f"{path}: expected string, got {value!r}")
        elif shape.enum and value not in shape.enum:
            problems.append(f"{path}: {value!r} not in enum {shape.name} {shape.enum}")
    elif kind == "boolean":
        if not isinstance(value, bool):
            problems.append(f"{path}: expected boolean, got {value!r}")
    elif kind in ("integer", "long"):
        if not isinstance(value, int) or isinstance(value, bool):
            problems.append(f"{path}: expected integer, got {value!r}")
    elif kind in ("float", "double"):
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: expected number, got {value!r}")
    elif kind == "timestamp":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            problems.append(f"{path}: expected epoch-seconds timestamp, got {value!r}")


def _exception_shapes(service_model):
    found = {}
    for op_name in service_model.operation_names:
        for shape in service_model.operation_model(op_name).error_shapes:
            found[shape.name] = shape
    return found


def check_response(operation_model, response_dict):
    status = response_dict["status_code"]
    headers = {k.lower(): v for k, v in response_dict["headers"].items()}
    raw = response_dict["body"]
    problems = []
    try:
        body = json.loads(raw) if raw else {}
    except ValueError:
        raise ShapeError(f"{operation_model.name}: HTTP {status} body is not JSON: {raw[:200]!r}")
    if status < 300:
        if operation_model.output_shape is not None:
            _check(operation_model.output_shape, body, operation_model.output_shape.name, problems)
    else:
        code = headers.get("x-amzn-errortype", "").split(":")[0]
        # The model's per-operation error lists are not exhaustive (CreateNodegroup on a missing
        # cluster answers ResourceNotFoundException, which it does not declare), so any EKS
        # exception shape is accepted; its status code and members are still checked.
        declared = _exception_shapes(operation_model.service_model)
        if code not in declared:
            problems.append(f"error {code or '(no x-amzn-ErrorType)'} (HTTP {status}) is not an "
                            f"EKS error: {sorted(declared)}")
        else:
            want = declared[code].metadata.get("error", {}).get("httpStatusCode")
            if want and want != status:
                problems.append(f"error {code} sent with HTTP {status}, model says {want}")
            if not isinstance(body, dict) or "message" not in body:
                problems.append(f"error {code}: body has no message: {raw[:200]!r}")
            else:
                extra = {k: v for k, v in body.items() if k != "__type"}
                _check(declared[code], extra, code, problems)
    if problems:
        raise ShapeError(f"{operation_model.name} response does not fit the EKS model:\n  "
                         + "\n  ".join(problems))


def install(client):
    """Check every EKS response ``client`` receives."""
    def hook(operation_model, response_dict, **_):
        check_response(operation_model, response_dict)
    client.meta.events.register("before-parse.eks.*", hook)
    return client
