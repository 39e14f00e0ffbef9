"""Compute resource provider: VM sizes, VMs, and the controller's VM reconciler."""
