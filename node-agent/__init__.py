"""fabric-node-agent: registers its node, converges libvirt to its assignments, reports what it sees."""
