"""Reply types shared by the front and its handlers.

Owns: ``Reply`` (a JSON answer the front makes), ``MotoReply`` (an answer captured from moto,
sent back byte for byte) and ``capture`` (running moto's WSGI app and collecting its answer).
"""

import json


class MotoReply:
    """A response captured from moto."""

    def __init__(self, status_line, headers, body):
        self.status_line = status_line
        self.headers = headers
        self.body = body

    @property
    def status(self):
        return int(self.status_line.split()[0])

    @property
    def ok(self):
        return 200 <= self.status < 300

    def json(self):
        return json.loads(self.body or b"{}")


class Reply:
    """A JSON response made by the front."""

    def __init__(self, doc=None, status=200):
        self.doc = {} if doc is None else doc
        self.status = status


def capture(app, environ):
    box = {}

    def start_response(status, headers, exc_info=None):
        box["status"], box["headers"] = status, headers
        return lambda data: box.setdefault("extra", []).append(data)

    result = app(environ, start_response)
    try:
        body = b"".join(result)
    finally:
        if hasattr(result, "close"):
            result.close()
    body = b"".join(box.pop("extra", [])) + body
    return MotoReply(box["status"], box["headers"], body)
