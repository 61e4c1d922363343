"""koji-adjutant: a Koji builder that runs every buildroot in a rootless podman container."""

__version__ = "0.1.0"
