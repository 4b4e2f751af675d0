"""The front's own memory and its configuration.

Owns: the lifecycle-hold configuration, the per-cluster records the front keeps beside moto's
cluster (add-ons, access entries, pod identity associations, updates, lifecycle clocks), the
global lock, and reset.

Rules kept:
- every EKS request (served or forwarded) runs under one lock, so the front's memory and moto's
  EKS objects change together;
- a hold is read from the configuration when the object starts the phase (create, update,
  delete) and kept with the object: changing the configuration later affects new phases only;
- reset (``POST /moto-api/reset``) forgets every record; the configuration survives a reset
  (``DELETE /sandbox-api/config`` puts it back to the environment's defaults);
- records are keyed by (account, region, cluster name), like moto's backends.
"""

import os
import threading
import time

# name -> default. Seconds are floats >= 0; *_delete_seconds of None fall back to delete_seconds.
DEFAULTS = {
    "cluster_create_seconds": 0.0,
    "nodegroup_create_seconds": 0.0,
    "addon_create_seconds": 0.0,
    "update_seconds": 0.0,
    "delete_seconds": 0.0,
    "cluster_delete_seconds": None,
    "nodegroup_delete_seconds": None,
    "addon_delete_seconds": None,
    "check_dependencies": True,
}

ENV_PREFIX = "SPAR_SANDBOX_"


def _parse(key, raw):
    if key == "check_dependencies":
        if isinstance(raw, bool):
            return raw
        if isinstance(raw, str) and raw.lower() in ("1", "true", "yes", "on", "0", "false", "no", "off"):
            return raw.lower() in ("1", "true", "yes", "on")
        raise ValueError(f"{key} must be a boolean")
    if raw is None and DEFAULTS[key] is None:
        return None
    if isinstance(raw, bool):
        raise ValueError(f"{key} must be a number of seconds")
    value = float(raw)
    if value < 0:
        raise ValueError(f"{key} must be >= 0")
    return value


class Config:
    def __init__(self):
        self.values = {}
        self.reset()

    def reset(self):
        """Back to DEFAULTS overridden by SPAR_SANDBOX_<KEY> environment variables."""
        values = dict(DEFAULTS)
        for key in DEFAULTS:
            raw = os.environ.get(ENV_PREFIX + key.upper())
            if raw not in (None, ""):
                values[key] = _parse(key, raw)
        self.values = values

    def update(self, changes):
        """Apply a JSON object of changes; unknown keys or bad values raise ValueError and
        change nothing."""
        if not isinstance(changes, dict):
            raise ValueError("expected a JSON object")
        parsed = {}
        for key, raw in changes.items():
            if key not in DEFAULTS:
                raise ValueError(f"unknown setting {key!r}; known: {', '.join(sorted(DEFAULTS))}")
            parsed[key] = _parse(key, raw)
        self.values.update(parsed)

    def hold(self, kind, phase):
        """Seconds an object of ``kind`` (cluster, nodegroup, addon) stays in ``phase``
        (create, update, delete)."""
        if phase == "update":
            return self.values["update_seconds"]
        if phase == "delete":
            own = self.values[f"{kind}_delete_seconds"]
            return self.values["delete_seconds"] if own is None else own
        return self.values[f"{kind}_create_seconds"]

    @property
    def check_dependencies(self):
        return self.values["check_dependencies"]


class Life:
    """Lifecycle clock of one object: CREATING until create_until, DELETING from start_delete
    until delete_until (then gone), UPDATING while one of its updates is in progress."""

    def __init__(self, create_hold):
        self.create_until = time.monotonic() + create_hold
        self.delete_until = None

    def start_delete(self, hold):
        self.delete_until = time.monotonic() + hold

    @property
    def deleting(self):
        return self.delete_until is not None

    def gone(self):
        return self.delete_until is not None and time.monotonic() >= self.delete_until

    def status(self, busy=False):
        if self.delete_until is not None:
            return "DELETING"
        if time.monotonic() < self.create_until:
            return "CREATING"
        return "UPDATING" if busy else "ACTIVE"


class Update:
    """One EKS update (cluster, node group or add-on), InProgress until its hold passes."""

    def __init__(self, update_id, kind, params, hold, target=None, created_at=None):
        from .wire import now
        self.id = update_id
        self.type = kind
        self.params = params
        self.target = target  # None (cluster), ("nodegroup", name) or ("addon", name)
        self.created_at = created_at if created_at is not None else now()
        self.until = time.monotonic() + hold

    @property
    def status(self):
        return "InProgress" if time.monotonic() < self.until else "Successful"

    def wire(self, status=None):
        return {
            "id": self.id,
            "status": status or self.status,
            "type": self.type,
            "params": list(self.params),
            "createdAt": self.created_at,
            "errors": [],
        }


class ClusterRecord:
    """What the front remembers about one cluster beside moto's own object."""

    def __init__(self, account, region, name, create_hold=0.0):
        self.account = account
        self.region = region
        self.name = name
        self.life = Life(create_hold)
        self.nodegroups = {}       # name -> Life
        self.addons = {}           # name -> addons.Addon
        self.access_entries = {}   # principalArn -> access.AccessEntry
        self.pod_identities = {}   # associationId -> podidentity.Association
        self.updates = []          # [Update], oldest first
        self.security_group_id = None

    def updates_for(self, target):
        return [u for u in self.updates if u.target == target]

    def busy(self, target=None):
        return any(u.status == "InProgress" for u in self.updates_for(target))

    def forget_target(self, target):
        self.updates = [u for u in self.updates if u.target != target]


class Store:
    def __init__(self):
        self.lock = threading.RLock()
        self.config = Config()
        self.clusters = {}

    def reset(self):
        with self.lock:
            self.clusters = {}

    def record(self, account, region, name):
        """The record for a cluster moto holds; made on first sight (a cluster the front did not
        see created counts as created long ago)."""
        key = (account, region, name)
        rec = self.clusters.get(key)
        if rec is None:
            rec = ClusterRecord(account, region, name)
            self.clusters[key] = rec
        return rec

    def peek(self, account, region, name):
        """The record for a cluster if the front has one; None otherwise (makes none)."""
        return self.clusters.get((account, region, name))

    def new_record(self, account, region, name, create_hold):
        rec = ClusterRecord(account, region, name, create_hold)
        self.clusters[(account, region, name)] = rec
        return rec

    def drop(self, account, region, name):
        self.clusters.pop((account, region, name), None)

    def records(self):
        return list(self.clusters.values())
