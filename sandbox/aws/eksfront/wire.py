"""Wire helpers shared by the handlers.

Owns: timestamps, ARN and id generation, pagination tokens and small request checks.

Rules kept:
- timestamps are epoch seconds (the rest-json default the EKS model uses), as JSON numbers;
- list operations page with ``maxResults`` (1..100, as the model documents) and an opaque
  ``nextToken``; a token the front did not issue is an InvalidParameterException;
- names are returned sorted, so paging is stable while nothing changes.
"""

import base64
import json
import random
import string
import time
import uuid

from .errors import invalid_parameter


def now():
    return round(time.time(), 3)


def new_uuid():
    return str(uuid.uuid4())


def short_id(prefix, length=17):
    alphabet = string.ascii_lowercase + string.digits
    return prefix + "".join(random.choice(alphabet) for _ in range(length))


def page(items, params, default_max=100, limit=100):
    """Slice ``items`` by ``maxResults``/``nextToken``; return (slice, next_token or None)."""
    max_results = params.get("maxResults", default_max)
    if not isinstance(max_results, int) or not 1 <= max_results <= limit:
        raise invalid_parameter(f"maxResults must be between 1 and {limit}")
    start = 0
    token = params.get("nextToken")
    if token:
        try:
            start = int(json.loads(base64.urlsafe_b64decode(token.encode()))["offset"])
        except Exception:
            raise invalid_parameter("The nextToken provided is invalid.")
    chunk = items[start:start + max_results]
    nxt = None
    if start + max_results < len(items):
        nxt = base64.urlsafe_b64encode(json.dumps({"offset": start + max_results}).encode()).decode()
    return chunk, nxt


def with_token(doc, token):
    if token:
        doc["nextToken"] = token
    return doc


def require(body, *names, **ids):
    """InvalidParameterException when a required member is missing or empty."""
    for name in names:
        if body.get(name) in (None, ""):
            raise invalid_parameter(f"{name} is required", **ids)


def check_tags(tags, **ids):
    if tags is None:
        return {}
    if not isinstance(tags, dict):
        raise invalid_parameter("tags must be a map", **ids)
    if len(tags) > 50:
        raise invalid_parameter("A resource can have at most 50 tags", **ids)
    for key in tags:
        if key.lower().startswith("aws:"):
            raise invalid_parameter(f"Tag key {key} uses the reserved prefix aws:", **ids)
    return dict(tags)
