"""The local lab: a whole fabric (etcd, controller, N node agents) on one machine."""
