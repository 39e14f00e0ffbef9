"""The ARM front door: resource ids, error bodies, and the gRPC servicers."""
