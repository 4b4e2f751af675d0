"""spar's local AWS sandbox: moto 5.2.5 behind a thin EKS front.

Modules, one job each:
  app          routing: who answers a request (front handler, moto, sandbox endpoints)
  routes       EKS REST routes built from botocore's EKS service model
  replies      reply types and capturing moto's WSGI answers
  errors       EKS error shapes on the wire
  wire         timestamps, ids, pagination, small checks
  store        the front's memory, lifecycle clocks, hold configuration, reset
  motobridge   the only module touching moto's in-process objects
  overlay      status overlay: holds made visible, delete holds reaped
  clusters     Create/Delete Cluster and Nodegroup: checked, completed, held
  updates      cluster/node group updates, DescribeUpdate, ListUpdates
  addons       add-ons, add-on versions and configuration schemas
  catalogue    static catalogue: Kubernetes versions, add-ons, access policies
  access       access entries and access policies
  podidentity  pod identity associations
  tags         tags on every EKS ARN
  certs        per-cluster CA certificates
  nodegroups_view  GET /sandbox-api/nodegroups: every node group as it is now, read-only
  server       the command line: ``sandbox/aws/serve --port PORT``
"""
