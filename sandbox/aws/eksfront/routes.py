"""Request routing for the EKS REST API.

Owns: turning (HTTP method, raw path, query string) into an EKS operation name and its URI
parameters.

Rules kept:
- the route table is built from the EKS service model shipped with botocore (the authority for
  paths and methods), so every EKS operation is recognised, served by the front or not;
- URI labels are matched on the *raw* (still percent-encoded) path, then decoded: labels such as
  ``principalArn`` or ``resourceArn`` carry ``/`` and ``:`` encoded, which a decoded path would
  split apart;
- when several routes match one request, the one with the most literal text wins;
- query-string members are converted to the model's type (list, integer, boolean).
"""

import re
from urllib.parse import parse_qs, unquote

import botocore.loaders

_LABEL = re.compile(r"\{([^}]+)\}")


class Route:
    def __init__(self, op, method, uri, input_shape, shapes):
        self.op = op
        self.method = method
        path = uri.split("?", 1)[0]
        self.literal = len(_LABEL.sub("", path))
        pattern = ""
        pos = 0
        self.labels = {}
        for m in _LABEL.finditer(path):
            pattern += re.escape(path[pos:m.start()])
            label = m.group(1)
            greedy = label.endswith("+")
            label = label.rstrip("+")
            pattern += f"(?P<{label}>.+)" if greedy else f"(?P<{label}>[^/]+)"
            pos = m.end()
        pattern += re.escape(path[pos:])
        self.regex = re.compile("^" + pattern + "/?$")
        # uri label -> member name, query key -> member name
        self.uri_members = {}
        self.query_members = {}
        if input_shape:
            for member, spec in shapes[input_shape]["members"].items():
                loc = spec.get("location")
                if loc == "uri":
                    self.uri_members[spec.get("locationName", member)] = member
                elif loc == "querystring":
                    self.query_members[spec.get("locationName", member)] = (
                        member, shapes[spec["shape"]]["type"])


class Router:
    """Maps a request to (operation name, params dict) using the EKS service model."""

    def __init__(self):
        model = botocore.loaders.Loader().load_service_model("eks", "service-2")
        shapes = model["shapes"]
        self.routes = []
        for op, spec in model["operations"].items():
            http = spec["http"]
            self.routes.append(Route(op, http["method"], http["requestUri"],
                                     spec.get("input", {}).get("shape"), shapes))
        self.routes.sort(key=lambda r: -r.literal)

    def match(self, method, raw_path, query_string):
        """Return (op, params) or (None, None). ``params`` holds URI labels (decoded) and the
        query-string members the model declares, under their model member names."""
        for route in self.routes:
            if route.method != method:
                continue
            m = route.regex.match(raw_path)
            if not m:
                continue
            params = {}
            for label, value in m.groupdict().items():
                params[route.uri_members.get(label, label)] = unquote(value)
            query = parse_qs(query_string or "", keep_blank_values=True)
            for key, values in query.items():
                if key not in route.query_members:
                    continue
                member, kind = route.query_members[key]
                if kind == "list":
                    params[member] = values
                elif kind == "integer":
                    try:
                        params[member] = int(values[-1])
                    except ValueError:
                        params[member] = values[-1]
                elif kind == "boolean":
                    params[member] = values[-1].lower() == "true"
                else:
                    params[member] = values[-1]
            return route.op, params
        return None, None
