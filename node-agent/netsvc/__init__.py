"""Per-network services on a node: an L2-only bridge, a service namespace, dnsmasq (DHCP + DNS).

Design (a DHCP agent in the style of the well-known cloud network services):
per network (VNI) and node, a Linux bridge in the root namespace carrying only
layer 2 (no address), the VMs' taps on it, and a service namespace joined to
it by a veth pair. Every address guests talk to lives in that namespace: the
gateway (.1) where dnsmasq serves static DHCP reservations and DNS.
"""
