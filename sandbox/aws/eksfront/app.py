"""The WSGI front: routing between the front's own EKS handlers and moto.

Owns: deciding, per request, who answers it, and the small sandbox endpoints.

Rules kept:
- a request signed for service ``eks`` (SigV4 credential scope) or sent to an ``eks.<region>``
  host is matched against the EKS model's routes; operations listed in ``HANDLERS`` are served by
  the front, every other EKS operation moto implements is forwarded unchanged;
- EKS operations neither the front nor moto implements get an ``InvalidRequestException`` JSON
  error (not moto's HTML 404), so SDKs report something readable;
- every other request (EC2, IAM, STS, S3, ... and ``/moto-api/*``) goes to moto untouched and is
  streamed straight back, except S3 GetBucketVersioning, whose answer moto 5.2.5 wraps in a
  ``GetBucketVersioningResponse`` root that strict SDKs (Rust, Go) refuse: the front renames it to
  S3's ``VersioningConfiguration`` (spar's S3 state backend checks versioning); and EC2
  ModifyVpcEndpoint, after which the front adds (removes) the gateway endpoint's prefix-list
  route in the route tables added to (removed from) it, as EC2 does and moto 5.2.5 does not;
- a request of a service that has injected faults armed (``faults``: a rule of its service or
  of ``*`` that is not spent) is first matched against them, and one a rule fails is answered
  with the fault's AWS error before anything else happens;
- ``POST /moto-api/reset`` clears the front's memory and the injected faults as well as moto's;
- ``/sandbox-api/config`` (GET / POST a JSON object / DELETE) reads, changes and restores the
  lifecycle holds; ``/sandbox-api/faults`` (GET / POST or PUT a JSON list of rules / DELETE)
  lists, adds and clears injected faults; ``GET /sandbox-api/nodegroups`` lists every managed
  node group as it is now, read-only (``nodegroups_view``); ``GET /sandbox-api/addons`` lists
  every EKS add-on as it is now, read-only (``addons_view``); ``GET /sandbox-api/health`` answers
  ``{"status": "ok"}``; ``/sandbox-api/*`` is no AWS service, so injected faults never apply;
- every EKS request runs under the store's lock, after ``overlay.tick`` has brought statuses up
  to date and removed objects whose delete hold has passed.
"""

import io
import json
import sys
import traceback
from urllib.parse import parse_qs, quote, unquote

from . import (access, addons, addons_view, clusters, faults, motobridge, nodegroups_view, overlay,
               podidentity, tags, updates)
from .errors import EksError
from .replies import MotoReply, Reply, capture
from .routes import Router
from .store import Store

HANDLERS = {}
for _module in (clusters, addons, access, podidentity, updates, tags):
    HANDLERS.update(_module.HANDLERS)

# EKS operations moto 5.2.5 implements itself (forwarded when the front does not serve them).
MOTO_OPERATIONS = {
    "CreateCluster", "DescribeCluster", "ListClusters", "DeleteCluster",
    "CreateNodegroup", "DescribeNodegroup", "ListNodegroups", "DeleteNodegroup",
    "UpdateNodegroupConfig", "UpdateClusterConfig",
    "CreateFargateProfile", "DescribeFargateProfile", "ListFargateProfiles", "DeleteFargateProfile",
    "TagResource", "UntagResource", "ListTagsForResource",
}


class Ctx:
    """One EKS request as the handlers see it."""

    def __init__(self, front, environ, op, params, body, raw_body, account, region, access_key):
        self.front = front
        self.environ = environ
        self.op = op
        self.params = params
        self.body = body
        self.raw_body = raw_body
        self.account = account
        self.region = region
        self.access_key = access_key
        self.store = front.store
        self.config = front.store.config
        self.partition = motobridge.partition(region)

    def forward(self, body=None):
        """Send this request to moto (optionally with a replaced JSON body)."""
        raw = self.raw_body if body is None else json.dumps(body).encode()
        return self.moto(self.environ["REQUEST_METHOD"], self.environ.get("_raw_path"),
                         self.environ.get("QUERY_STRING", ""), raw)

    def moto(self, method, raw_path, query="", body=b""):
        env = dict(self.environ)
        env["REQUEST_METHOD"] = method
        env["PATH_INFO"] = unquote(raw_path)
        env["RAW_URI"] = env["REQUEST_URI"] = raw_path + ("?" + query if query else "")
        env["QUERY_STRING"] = query
        env["CONTENT_LENGTH"] = str(len(body))
        env["wsgi.input"] = io.BytesIO(body)
        if body:
            env["CONTENT_TYPE"] = "application/json"
        return capture(self.front.moto_app, env)

    def moto_get(self, *segments):
        """GET /seg1/seg2... on moto's EKS (segments percent-encoded); returns MotoReply."""
        return self.moto("GET", "/" + "/".join(quote(s, safe="") for s in segments))

    def arn(self, resource):
        return f"arn:{self.partition}:eks:{self.region}:{self.account}:{resource}"


class Front:
    def __init__(self, moto_app):
        self.moto_app = moto_app
        self.router = Router()
        self.store = Store()
        self.faults = faults.Faults(self.store.lock)

    # -- WSGI ----------------------------------------------------------------------------------
    def __call__(self, environ, start_response):
        path = environ.get("PATH_INFO", "")
        method = environ.get("REQUEST_METHOD", "GET")
        if path.startswith("/sandbox-api/"):
            return self.sandbox_api(environ, start_response, path, method)
        if path == "/moto-api/reset" and method == "POST":
            with self.store.lock:
                self.store.reset()
                self.faults.clear()
                return self.moto_app(environ, start_response)
        service, region, access_key = motobridge.request_scope(environ)
        if self.faults.armed(service):
            fault = self.faults.take(service, self.action(environ, service, method))
            if fault is not None:
                status_line, headers, body = faults.answer(fault, "HTTP_X_AMZ_TARGET" in environ)
                start_response(status_line, headers)
                return [body]
        if service == "s3" and method == "GET" and _is_versioning_query(environ.get("QUERY_STRING", "")):
            return _fixed_versioning(capture(self.moto_app, environ), start_response)
        if service == "ec2" and method == "POST":
            raw = _read_body(environ)
            environ["wsgi.input"] = io.BytesIO(raw)
            environ["CONTENT_LENGTH"] = str(len(raw))
            form = parse_qs(raw.decode("utf-8", "replace"))
            if form.get("Action") == ["ModifyVpcEndpoint"]:
                return self.modify_vpc_endpoint(environ, start_response, form, region or "us-east-1",
                                                access_key)
        if service != "eks":
            return self.moto_app(environ, start_response)
        return self.eks(environ, start_response, method, region or "us-east-1", access_key)

    def eks(self, environ, start_response, method, region, access_key):
        raw_body = _read_body(environ)
        raw_path = _raw_path(environ)
        environ["_raw_path"] = raw_path
        op, params = self.router.match(method, raw_path, environ.get("QUERY_STRING", ""))
        account = motobridge.account_for(environ, access_key)
        with self.store.lock:
            try:
                overlay.tick(self.store)
                try:
                    body = json.loads(raw_body) if raw_body.strip() else {}
                except ValueError as err:
                    raise EksError("InvalidParameterException", f"Malformed request body: {err}")
                if not isinstance(body, dict):
                    raise EksError("InvalidParameterException", "Request body must be a JSON object")
                ctx = Ctx(self, environ, op, params or {}, body, raw_body, account, region, access_key)
                handler = HANDLERS.get(op)
                if handler is not None:
                    reply = handler(ctx)
                elif op in MOTO_OPERATIONS:
                    reply = ctx.forward()
                else:
                    raise EksError("InvalidRequestException",
                                   f"spar sandbox: EKS operation {op or method + ' ' + raw_path} is not emulated")
            except EksError as err:
                start_response(f"{err.status} {_reason(err.status)}", err.headers())
                return [err.body()]
            except Exception as exc:  # a bug in the front: say so, loudly
                traceback.print_exc(file=sys.stderr)
                err = EksError("ServerException", f"spar sandbox front failed: {exc!r}")
                start_response("500 Internal Server Error", err.headers())
                return [err.body()]
        if isinstance(reply, MotoReply):
            start_response(reply.status_line, reply.headers)
            return [reply.body]
        data = json.dumps(reply.doc).encode()
        start_response(f"{reply.status} {_reason(reply.status)}",
                       [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
        return [data]

    def action(self, environ, service, method):
        """The API operation a request calls (for matching injected faults), or None."""
        target = environ.get("HTTP_X_AMZ_TARGET")
        if target:
            return target.rsplit(".", 1)[-1]
        if service == "eks":
            return self.router.match(method, _raw_path(environ), environ.get("QUERY_STRING", ""))[0]
        form = parse_qs(environ.get("QUERY_STRING", ""))
        if method == "POST":
            raw = _read_body(environ)
            environ["wsgi.input"] = io.BytesIO(raw)
            environ["CONTENT_LENGTH"] = str(len(raw))
            form.update(parse_qs(raw.decode("utf-8", "replace")))
        return (form.get("Action") or [None])[0]

    def modify_vpc_endpoint(self, environ, start_response, form, region, access_key):
        """moto's ModifyVpcEndpoint, then the route changes it leaves out (see motobridge)."""
        reply = capture(self.moto_app, environ)
        if reply.ok:
            account = motobridge.account_for(environ, access_key)
            with self.store.lock:
                motobridge.sync_gateway_endpoint_routes(
                    account, region, form.get("VpcEndpointId", [""])[0],
                    _members(form, "AddRouteTableId"), _members(form, "RemoveRouteTableId"))
        start_response(reply.status_line, reply.headers)
        return [reply.body]

    # -- sandbox endpoints ---------------------------------------------------------------------
    def sandbox_api(self, environ, start_response, path, method):
        def answer(status, doc):
            data = json.dumps(doc).encode()
            start_response(f"{status} {_reason(status)}",
                           [("Content-Type", "application/json"), ("Content-Length", str(len(data)))])
            return [data]

        if path == "/sandbox-api/health":
            return answer(200, {"status": "ok"})
        if path == "/sandbox-api/faults":
            return self.faults_api(environ, method, answer)
        if path == "/sandbox-api/nodegroups":
            if method != "GET":
                return answer(405, {"message": f"method {method} not allowed"})
            return answer(200, nodegroups_view.nodegroups(self.store))
        if path == "/sandbox-api/addons":
            if method != "GET":
                return answer(405, {"message": f"method {method} not allowed"})
            return answer(200, addons_view.addons(self.store))
        if path != "/sandbox-api/config":
            return answer(404, {"message": f"no such sandbox endpoint: {path}"})
        config = self.store.config
        with self.store.lock:
            if method == "GET":
                return answer(200, config.values)
            if method == "DELETE":
                config.reset()
                return answer(200, config.values)
            if method in ("POST", "PUT"):
                raw = _read_body(environ) or b"{}"
                try:
                    config.update(json.loads(raw or b"{}"))
                except ValueError as err:
                    return answer(400, {"message": str(err)})
                return answer(200, config.values)
        return answer(405, {"message": f"method {method} not allowed"})

    def faults_api(self, environ, method, answer):
        if method == "GET":
            return answer(200, self.faults.docs())
        if method == "DELETE":
            self.faults.clear()
            return answer(200, self.faults.docs())
        if method in ("POST", "PUT"):
            try:
                self.faults.add(json.loads(_read_body(environ) or b"[]"))
            except ValueError as err:
                return answer(400, {"message": str(err)})
            return answer(200, self.faults.docs())
        return answer(405, {"message": f"method {method} not allowed"})


def _raw_path(environ):
    """The request's path as sent (still percent-encoded), without the query."""
    raw_uri = environ.get("RAW_URI") or environ.get("REQUEST_URI") or quote(environ.get("PATH_INFO", ""))
    raw_path = raw_uri.split("?", 1)[0]
    if "://" in raw_path:  # absolute-form request target
        raw_path = "/" + raw_path.split("://", 1)[1].split("/", 1)[-1]
    return raw_path


def _members(form, name):
    """The values of an EC2 query list parameter (``Name.1``, ``Name.2``, ...), in order."""
    keys = [k for k in form if k.startswith(name + ".") and k[len(name) + 1:].isdigit()]
    return [form[k][0] for k in sorted(keys, key=lambda k: int(k[len(name) + 1:]))]


def _is_versioning_query(query):
    return "versioning" in [part.split("=", 1)[0] for part in query.split("&")]


def _fixed_versioning(reply, start_response):
    """moto's GetBucketVersioning answer with S3's root element name."""
    body = reply.body
    if reply.ok:
        body = body.replace(b"<GetBucketVersioningResponse", b"<VersioningConfiguration", 1)
        body = body.replace(b"</GetBucketVersioningResponse>", b"</VersioningConfiguration>", 1)
    headers = [(k, str(len(body)) if k.lower() == "content-length" else v) for k, v in reply.headers]
    start_response(reply.status_line, headers)
    return [body]


def _read_body(environ):
    """The request body, by Content-Length or, for chunked requests, to the end."""
    length = environ.get("CONTENT_LENGTH")
    if length:
        return environ["wsgi.input"].read(int(length))
    if environ.get("wsgi.input_terminated") or "chunked" in environ.get("HTTP_TRANSFER_ENCODING", ""):
        return environ["wsgi.input"].read()
    return b""


_REASONS = {200: "OK", 201: "Created", 204: "No Content", 400: "Bad Request", 403: "Forbidden",
            404: "Not Found", 405: "Method Not Allowed", 409: "Conflict", 429: "Too Many Requests",
            500: "Internal Server Error", 503: "Service Unavailable"}


def _reason(status):
    return _REASONS.get(status, "Unknown")
