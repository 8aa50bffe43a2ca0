"""File formats at the edges: HDF5 feature store."""
