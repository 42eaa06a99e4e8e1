"""Package discovery that pyproject.toml cannot express on its own.

`[tool.setuptools.packages.find]` only names packages after their directory, so spec/ (installed
as the data package `ansim_spec`) would never be found. Everything else is in pyproject.toml.
"""

from setuptools import find_packages, setup

_ROOT_PACKAGES = ["ansim_sdk*", "reference_server*", "conformance*"]
_GENERATED_PACKAGES = ["ansim", "ansim.*", "buf", "buf.*"]

setup(
    packages=[
        *find_packages(".", include=_ROOT_PACKAGES),
        *find_packages("gen/python", include=_GENERATED_PACKAGES),
        "ansim_spec",
    ],
    package_dir={"ansim": "gen/python/ansim", "buf": "gen/python/buf", "ansim_spec": "spec"},
    package_data={
        "ansim_spec": ["*.md", "requirements.yaml", "schemas/*.json", "examples/*/*/*.json"],
        "reference_server.store": ["migrations/*.sql"],
        "reference_server.geo": ["data/*"],
        "conformance": ["*.lock", "reports/templates/*"],
    },
)
