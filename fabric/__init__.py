"""fabriclab control plane: ARM front door, resource providers, scheduler, etcd store."""
