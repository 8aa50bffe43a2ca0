"""reid: person re-identification with the Group Loss."""

__version__ = "0.1.0"


def __getattr__(name: str):
    """`from reid import FeatureExtractor` without importing torch on `import reid`."""
    if name == "FeatureExtractor":
        from reid.inference.extractor import FeatureExtractor

        return FeatureExtractor
    raise AttributeError(f"module 'reid' has no attribute {name!r}")
