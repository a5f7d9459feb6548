"""uus-agent: the machine side of UUS.

Standard library only, Python >= 3.8, because it runs on the system Python of every supported
Ubuntu (20.04, 22.04, 24.04) and Debian release. The wire format is protocol/v1/README.md.
"""

__version__ = "0.1.0"
