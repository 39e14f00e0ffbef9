"""fabric-controller: the gRPC API and the reconcilers, over etcd."""
