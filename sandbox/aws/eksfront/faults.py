"""Injected faults: AWS error answers the sandbox gives instead of serving a request.

Owns: the fault rules (``/sandbox-api/faults``), matching a request against them, and each
service's wire form of an error, so that clients' retry logic can be tested against an emulator
that otherwise never throttles, never fails and is never eventually consistent.

Rules kept:
- a rule is ``{"service", "action", "code", "message", "status", "count" | "rate", "seed"}``:
  the service as the request is signed for it (SigV4 credential scope: ``ec2``, ``iam``,
  ``eks``, ``sqs``, ``events``, or ``*`` for any of them), the API operation name
  (``CreateVpc``, or ``*`` for any), AWS's error code, its message, the HTTP status (default
  400), and either how many matching calls fail (``count``, default 1) or the share of matching
  calls that fail (``rate``, 0 < rate <= 1, optionally with an integer ``seed`` that makes the
  random draws reproducible); unknown members, a service not listed, a status outside 400-599,
  a count below 1, a rate outside (0, 1], both count and rate, a seed without a rate, or
  ``status`` with the ``throttling`` code refuse the whole list (HTTP 400, nothing added);
- the code ``throttling`` (lower case: no AWS code is spelled so) stands for each service's own
  throttling error (``THROTTLING``: code, status and, unless the rule gives one, message), codes
  that botocore's and the Rust SDK's retry classifiers both treat as throttling;
- a request goes through the rules of its service and action in the order they were added,
  skipping spent count rules: a count rule fails it (and its count goes down by one); a rate
  rule draws and fails it with probability ``rate``, else lets it on to the next rule (and, past
  the last, to moto). Every rule a request reaches counts it in ``seen``, every rule that fails
  it in ``fired``; rate rules never run out. Spent count rules stay listed (``remaining`` 0) so
  a test can read how often each fired;
- the operation name is the form's ``Action`` for query protocols (EC2, IAM, SQS over query),
  the ``X-Amz-Target`` suffix for JSON protocols (SQS over JSON, EventBridge) and the EKS route's
  operation for EKS; a request whose operation cannot be told (an EKS path no route matches) is
  never faulted, not even by ``*``;
- a matching request is answered before anything else is done for it (moto never sees it, the
  EKS front's clocks do not move), with the service's real error shape: EC2's
  ``Response/Errors/Error``, IAM's and SQS-query's ``ErrorResponse/Error`` with ``Type``
  (``Sender`` below 500, ``Receiver`` from 500), EKS's ``x-amzn-ErrorType`` header and JSON
  ``message``, SQS-JSON's ``__type`` plus the ``x-amzn-query-error: CODE;Type`` header that
  query-compatible SDKs take the code from, EventBridge's ``__type``; every answer carries a
  request id;
- rules live under the lock the front passes in (the store's); ``DELETE /sandbox-api/faults``
  and ``POST /moto-api/reset`` clear them.
"""

import http
import json
import math
import random
import uuid
from xml.sax.saxutils import escape

SERVICES = ("ec2", "iam", "eks", "sqs", "events")
ANY = "*"
FIELDS = {"service", "action", "code", "message", "status", "count", "rate", "seed"}
DEFAULT_MESSAGE = "Fault injected by the spar sandbox"
THROTTLING_KEYWORD = "throttling"

# service -> (code, HTTP status, message) of its real throttling error. Every code is in the
# throttling lists of botocore (retries/standard.py ThrottledRetryableChecker) and of the Rust
# SDK (aws-runtime retries/classifiers.rs THROTTLING_ERRORS), which classify by code alone.
THROTTLING = {
    # EC2 API throttling guide; botocore _retry.json "ec2": RequestLimitExceeded with 503.
    "ec2": ("RequestLimitExceeded", 503, "Request limit exceeded."),
    # The query services' common error Throttling, 400 (botocore _retry.json "throttling").
    "iam": ("Throttling", 400, "Rate exceeded"),
    # botocore's EKS model: ThrottlingException, httpStatusCode 429.
    "eks": ("ThrottlingException", 429, "Rate exceeded"),
    # botocore's SQS model (awsJson1_0, awsQueryCompatible): RequestThrottled, declared by every
    # operation, no status (a client error: 400); aws-sdk-sqs maps it to its RequestThrottled
    # variant. ThrottlingException is no SQS model error.
    "sqs": ("RequestThrottled", 400, "The request was denied due to request throttling."),
    # botocore's EventBridge model (awsJson1_1): ThrottlingException, 400.
    "events": ("ThrottlingException", 400, "Rate exceeded"),
}


class Fault:
    """One failed call: what to answer, in ``service``'s shape."""

    def __init__(self, service, code, message, status):
        self.service = service
        self.code = code
        self.message = message
        self.status = status


class Rule:
    def __init__(self, service, action, code, message, status, count=None, rate=None, seed=None):
        self.service = service
        self.action = action
        self.code = code
        self.message = message  # None: the throttling keyword's per-service message
        self.status = status    # None: the throttling keyword's per-service status
        self.rate = rate
        self.seed = seed
        self.remaining = count
        self.random = random.Random(seed) if rate is not None else None
        self.fired = 0
        self.seen = 0

    def live(self):
        return self.rate is not None or self.remaining > 0

    def matches(self, service, action):
        return (self.service in (ANY, service) and self.action in (ANY, action)
                and self.live())

    def fires(self):
        """Counts a matching call; True when this rule fails it."""
        self.seen += 1
        if self.rate is None:
            self.remaining -= 1
        elif self.random.random() >= self.rate:
            return False
        self.fired += 1
        return True

    def fault(self, service):
        if self.code == THROTTLING_KEYWORD:
            code, status, message = THROTTLING[service]
            return Fault(service, code, self.message if self.message is not None else message,
                         status)
        return Fault(service, self.code, self.message, self.status)

    def doc(self):
        doc = {"service": self.service, "action": self.action, "code": self.code,
               "message": self.message, "status": self.status}
        if self.rate is None:
            doc.update(count=self.fired + self.remaining, fired=self.fired,
                       remaining=self.remaining)
        else:
            doc.update(rate=self.rate, seed=self.seed, seen=self.seen, fired=self.fired)
        return doc


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def parse_rules(doc):
    """Rules from a JSON document (a list of rule objects, or one); ValueError when invalid."""
    items = doc if isinstance(doc, list) else [doc]
    rules = []
    for n, item in enumerate(items):
        where = f"rule {n}"
        if not isinstance(item, dict):
            raise ValueError(f"{where}: expected a JSON object, got {item!r}")
        unknown = set(item) - FIELDS
        if unknown:
            raise ValueError(f"{where}: unknown members {sorted(unknown)}; known: {sorted(FIELDS)}")
        service = item.get("service")
        if service != ANY and service not in SERVICES:
            raise ValueError(f"{where}: service must be one of {list(SERVICES)} or {ANY!r}, "
                             f"got {service!r}")
        for key in ("action", "code"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise ValueError(f"{where}: {key} must be a non-empty string")
        throttling = item["code"] == THROTTLING_KEYWORD
        if "message" in item and not isinstance(item["message"], str):
            raise ValueError(f"{where}: message must be a string")
        message = item.get("message", None if throttling else DEFAULT_MESSAGE)
        if throttling:
            if "status" in item:
                raise ValueError(f"{where}: code {THROTTLING_KEYWORD!r} answers each service's "
                                 "own throttling status; give no status")
            status = None
        else:
            status = item.get("status", 400)
            if not _is_int(status) or not 400 <= status <= 599:
                raise ValueError(f"{where}: status must be an HTTP error status (400-599), "
                                 f"got {status!r}")
        if "rate" in item:
            if "count" in item:
                raise ValueError(f"{where}: give either count or rate, not both")
            rate = item["rate"]
            if (isinstance(rate, bool) or not isinstance(rate, (int, float))
                    or not math.isfinite(rate) or not 0 < rate <= 1):
                raise ValueError(f"{where}: rate must be a number with 0 < rate <= 1, got {rate!r}")
            seed = item.get("seed")
            if seed is not None and not _is_int(seed):
                raise ValueError(f"{where}: seed must be an integer, got {seed!r}")
            rules.append(Rule(service, item["action"], item["code"], message, status,
                              rate=rate, seed=seed))
            continue
        if "seed" in item:
            raise ValueError(f"{where}: seed needs a rate (a count rule draws nothing)")
        count = item.get("count", 1)
        if not _is_int(count) or count < 1:
            raise ValueError(f"{where}: count must be an integer >= 1, got {count!r}")
        rules.append(Rule(service, item["action"], item["code"], message, status, count=count))
    return rules


class Faults:
    """The fault rules of one front."""

    def __init__(self, lock):
        self.lock = lock
        self.rules = []

    def docs(self):
        with self.lock:
            return [r.doc() for r in self.rules]

    def add(self, doc):
        """Adds the rules in ``doc`` (all or none); ValueError when one is invalid."""
        rules = parse_rules(doc)
        with self.lock:
            self.rules.extend(rules)

    def clear(self):
        with self.lock:
            self.rules = []

    def armed(self, service):
        """True when a live rule may match ``service`` (cheap: checked on every request)."""
        if service not in SERVICES:
            return False
        with self.lock:
            return any(r.service in (ANY, service) and r.live() for r in self.rules)

    def take(self, service, action):
        """The ``Fault`` the first firing rule for (service, action) answers; or None."""
        if not action or service not in SERVICES:
            return None
        with self.lock:
            for rule in self.rules:
                if rule.matches(service, action) and rule.fires():
                    return rule.fault(service)
        return None


def answer(fault, json_protocol):
    """(status line, headers, body) of ``fault`` in its service's wire shape.

    ``json_protocol``: the request used a JSON protocol (``X-Amz-Target``); only SQS speaks both.
    """
    request_id = str(uuid.uuid4())
    fault_type = "Sender" if fault.status < 500 else "Receiver"
    code, message = fault.code, fault.message
    headers = [("x-amzn-RequestId", request_id)]
    if fault.service == "ec2":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Response><Errors><Error><Code>{escape(code)}</Code>"
                f"<Message>{escape(message)}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>").encode()
        headers.append(("Content-Type", "text/xml;charset=UTF-8"))
    elif fault.service == "iam" or (fault.service == "sqs" and not json_protocol):
        namespace = ("https://iam.amazonaws.com/doc/2010-05-08/" if fault.service == "iam"
                     else "http://queue.amazonaws.com/doc/2012-11-05/")
        body = (f'<ErrorResponse xmlns="{namespace}"><Error><Type>{fault_type}</Type>'
                f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers.append(("Content-Type", "text/xml"))
    elif fault.service == "eks":
        body = json.dumps({"message": message}).encode()
        headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    elif fault.service == "sqs":
        # awsJson1_0 with the awsQueryCompatible trait: the query-era code travels in a header.
        body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.0"),
                    ("x-amzn-query-error", f"{code};{fault_type}")]
    else:  # events: awsJson1_1
        body = json.dumps({"__type": code, "message": message}).encode()
        headers.append(("Content-Type", "application/x-amz-json-1.1"))
    headers.append(("Content-Length", str(len(body))))
    return f"{fault.status} {_phrase(fault.status)}", headers, body


def _phrase(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"
