"""Storage resource provider: accounts with two keys, containers, blobs, leases, SAS, and the HTTP data plane."""
