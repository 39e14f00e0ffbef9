"""Network resource provider: virtual networks, subnets, NICs, private IP allocation, internal DNS names."""
