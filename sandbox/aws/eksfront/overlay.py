"""Status overlay: the lifecycle holds made visible.

Owns: bringing every cluster's, node group's and add-on's status up to date before a request is
answered, and removing objects whose delete hold has passed.

Rules kept:
- moto creates and deletes at once and reports ACTIVE; the front keeps a clock per object
  (``store.Life``) and writes the status it implies onto moto's own cluster and node group
  objects, so every moto answer (DescribeCluster, DescribeNodegroup, CreateNodegroup's checks...)
  shows it: CREATING until the create hold passes, UPDATING while one of the object's updates is
  InProgress, DELETING from the delete call until the delete hold passes, ACTIVE otherwise;
- once a delete hold has passed the object is removed for good (moto's copy too), so the next
  Describe answers ResourceNotFoundException, as the ``*Deleted`` waiters expect;
- removing a cluster removes everything the front kept for it (add-ons, access entries, pod
  identity associations, updates) and the cluster security group the front made;
- add-ons live only in the front; their status is computed the same way when they are read;
- ``nodegroup_status`` answers the same status as ``tick`` + ``apply`` would write, but reads
  only (for ``/sandbox-api/nodegroups``, which must change nothing); ``addon_status`` reads only
  too (``/sandbox-api/addons``).
"""

from . import motobridge


def tick(store):
    for rec in store.records():
        if rec.life.gone():
            reap_cluster(store, rec)
            continue
        moto_cluster = motobridge.cluster(rec.account, rec.region, rec.name)
        if moto_cluster is None:  # gone behind the front's back (e.g. moto reset by hand)
            store.drop(rec.account, rec.region, rec.name)
            continue
        for name, life in list(rec.nodegroups.items()):
            if life.gone():
                motobridge.delete_nodegroup(rec.account, rec.region, rec.name, name)
                rec.nodegroups.pop(name, None)
                rec.forget_target(("nodegroup", name))
        for name, addon in list(rec.addons.items()):
            if addon.life.gone():
                remove_addon(rec, name)
        apply(rec, moto_cluster)


def apply(rec, moto_cluster=None):
    """Write the statuses the clocks imply onto moto's objects for this cluster."""
    from .store import Life

    moto_cluster = moto_cluster or motobridge.cluster(rec.account, rec.region, rec.name)
    if moto_cluster is None:
        return
    moto_cluster.status = rec.life.status(rec.busy(None))
    for name, ng in moto_cluster.nodegroups.items():
        life = rec.nodegroups.get(name)
        if life is None:  # created before the front saw it: counts as long done
            life = rec.nodegroups[name] = Life(0.0)
        ng.status = life.status(rec.busy(("nodegroup", name)))


def nodegroup_status(rec, name):
    """The status node group ``name`` shows now by the clocks, computed without writing
    anything (no record made, nothing reaped): ``rec`` may be None (a cluster the front never
    saw: long created); None once its delete hold has passed (the next tick removes it)."""
    if rec is None:
        return "ACTIVE"
    life = rec.nodegroups.get(name)
    busy = rec.busy(("nodegroup", name))
    if life is None:  # created before the front saw it: counts as long done
        return "UPDATING" if busy else "ACTIVE"
    if life.gone():
        return None
    return life.status(busy)


def addon_status(rec, addon):
    return addon.life.status(rec.busy(("addon", addon.name)))


def remove_addon(rec, name):
    addon = rec.addons.pop(name, None)
    if addon is None:
        return
    for assoc_id in [a.id for a in rec.pod_identities.values() if a.owner_arn == addon.arn]:
        rec.pod_identities.pop(assoc_id, None)
    rec.forget_target(("addon", name))


def reap_cluster(store, rec):
    motobridge.delete_cluster(rec.account, rec.region, rec.name)
    if rec.security_group_id:
        motobridge.delete_security_group(rec.account, rec.region, rec.security_group_id)
    store.drop(rec.account, rec.region, rec.name)
