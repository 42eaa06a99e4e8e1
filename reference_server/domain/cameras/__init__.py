"""The camera area: the CCTV inventory in the store, its in-memory spatial index and the import."""
