"""Injected faults: AWS error answers the sandbox gives instead of serving a request.

Owns: the fault rules (``/sandbox-api/faults``), matching a request against them, and each
service's wire form of an error, so that clients' retry logic can be tested against an emulator
that otherwise never throttles, never fails and is never eventually consistent.

Rules kept:
- a rule is ``{"service", "action", "code", "message", "status", "count"}``: the service as the
  request is signed for it (SigV4 credential scope: ``ec2``, ``iam``, ``eks``, ``sqs``,
  ``events``), the API operation name (``CreateVpc``), AWS's error code, its message, the HTTP
  status (default 400) and how many matching calls fail (default 1); unknown members, a service
  not listed, a status outside 400-599 or a count below 1 refuse the whole list (HTTP 400,
  nothing added);
- rules fire in the order they were added: a request fails with the first rule of its service
  and action that has calls left, and that rule's count goes down by one; spent rules stay
  listed (``remaining`` 0) so a test can read how often each fired;
- the operation name is the form's ``Action`` for query protocols (EC2, IAM, SQS over query),
  the ``X-Amz-Target`` suffix for JSON protocols (SQS over JSON, EventBridge) and the EKS route's
  operation for EKS;
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
import uuid
from xml.sax.saxutils import escape

SERVICES = ("ec2", "iam", "eks", "sqs", "events")
FIELDS = {"service", "action", "code", "message", "status", "count"}
DEFAULT_MESSAGE = "Fault injected by the spar sandbox"


class Rule:
    def __init__(self, service, action, code, message, status, count):
        self.service = service
        self.action = action
        self.code = code
        self.message = message
        self.status = status
        self.remaining = count
        self.fired = 0

    def doc(self):
        return {"service": self.service, "action": self.action, "code": self.code,
                "message": self.message, "status": self.status,
                "count": self.fired + self.remaining, "fired": self.fired,
                "remaining": self.remaining}


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
        if service not in SERVICES:
            raise ValueError(f"{where}: service must be one of {list(SERVICES)}, got {service!r}")
        for key in ("action", "code"):
            if not isinstance(item.get(key), str) or not item[key]:
                raise ValueError(f"{where}: {key} must be a non-empty string")
        message = item.get("message", DEFAULT_MESSAGE)
        if not isinstance(message, str):
            raise ValueError(f"{where}: message must be a string")
        status = item.get("status", 400)
        if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
            raise ValueError(f"{where}: status must be an HTTP error status (400-599), got {status!r}")
        count = item.get("count", 1)
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(f"{where}: count must be an integer >= 1, got {count!r}")
        rules.append(Rule(service, item["action"], item["code"], message, status, count))
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
        """True when a rule for ``service`` has calls left (cheap: checked on every request)."""
        with self.lock:
            return any(r.service == service and r.remaining > 0 for r in self.rules)

    def take(self, service, action):
        """The first rule for (service, action) with calls left, spent by one; or None."""
        if not action:
            return None
        with self.lock:
            for rule in self.rules:
                if rule.service == service and rule.action == action and rule.remaining > 0:
                    rule.remaining -= 1
                    rule.fired += 1
                    return rule
        return None


def answer(rule, json_protocol):
    """(status line, headers, body) of ``rule``'s error in its service's wire shape.

    ``json_protocol``: the request used a JSON protocol (``X-Amz-Target``); only SQS speaks both.
    """
    request_id = str(uuid.uuid4())
    fault_type = "Sender" if rule.status < 500 else "Receiver"
    code, message = rule.code, rule.message
    headers = [("x-amzn-RequestId", request_id)]
    if rule.service == "ec2":
        body = ('<?xml version="1.0" encoding="UTF-8"?>\n'
                f"<Response><Errors><Error><Code>{escape(code)}</Code>"
                f"<Message>{escape(message)}</Message></Error></Errors>"
                f"<RequestID>{request_id}</RequestID></Response>").encode()
        headers.append(("Content-Type", "text/xml;charset=UTF-8"))
    elif rule.service == "iam" or (rule.service == "sqs" and not json_protocol):
        namespace = ("https://iam.amazonaws.com/doc/2010-05-08/" if rule.service == "iam"
                     else "http://queue.amazonaws.com/doc/2012-11-05/")
        body = (f'<ErrorResponse xmlns="{namespace}"><Error><Type>{fault_type}</Type>'
                f"<Code>{escape(code)}</Code><Message>{escape(message)}</Message></Error>"
                f"<RequestId>{request_id}</RequestId></ErrorResponse>").encode()
        headers.append(("Content-Type", "text/xml"))
    elif rule.service == "eks":
        body = json.dumps({"message": message}).encode()
        headers += [("Content-Type", "application/json"), ("x-amzn-ErrorType", code)]
    elif rule.service == "sqs":
        # awsJson1_0 with the awsQueryCompatible trait: the query-era code travels in a header.
        body = json.dumps({"__type": f"com.amazonaws.sqs#{code}", "message": message}).encode()
        headers += [("Content-Type", "application/x-amz-json-1.0"),
                    ("x-amzn-query-error", f"{code};{fault_type}")]
    else:  # events: awsJson1_1
        body = json.dumps({"__type": code, "message": message}).encode()
        headers.append(("Content-Type", "application/x-amz-json-1.1"))
    headers.append(("Content-Length", str(len(body))))
    return f"{rule.status} {_phrase(rule.status)}", headers, body


def _phrase(status):
    try:
        return http.HTTPStatus(status).phrase
    except ValueError:
        return "Error"
