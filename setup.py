"""Packages for the distribution, found rather than listed: every package under fabric/, and node-agent/ as
`nodeagent` (a folder name with a dash, mapped; DESIGN fixes the layout). Everything else is in pyproject.toml."""
from setuptools import find_packages, setup

AGENT = "node-agent"
setup(
    packages=find_packages(include=["fabric", "fabric.*"])
    + ["nodeagent"] + [f"nodeagent.{p}" for p in find_packages(AGENT)],
    package_dir={"nodeagent": AGENT},
    # the wireserver's handler repository: packages in the reference's handler format, served to guests
    package_data={"nodeagent.netsvc": ["handlers/*/*/*.json", "handlers/*/*/bin/*"]},
)
