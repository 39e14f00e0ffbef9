"""The only package of fabriclab that imports libvirt.

`Host` is the driver contract the agent uses (a connection, the domains this
node owns, define/start/destroy/undefine); `domain_xml` builds the XML;
`probe` decides between KVM and TCG by booting a kernel for real.
"""
from nodeagent.hypervisor.domain_xml import DomainSpec, domain_xml
from nodeagent.hypervisor.host import Host, HypervisorError, OwnedDomain
from nodeagent.hypervisor.probe import choose_domain_type

__all__ = ["DomainSpec", "Host", "HypervisorError", "OwnedDomain", "choose_domain_type", "domain_xml"]
