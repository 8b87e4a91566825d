"""The embedded local AWS: the engine, its moto patches, the CLI and the benchmarks."""

from firebreak_local import botocore_data

# Here, before any module of the package imports moto: its EC2 module opens botocore sessions as it is imported.
botocore_data.share()
